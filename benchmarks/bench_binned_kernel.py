"""Binned replicate kernel of two source trees in one process, calls alternated (A/B).

Copies ``OLD/ecgaudit`` into a temporary package ``oldeca`` (imports renamed), builds the
1M-row engine once with this tree, and times the old tree's and this tree's
``_binfused.binned_replicates`` on the same arrays, alternating old/new every round, with 1
and 2 numba threads; first compares their statistics (identical integers, the largest
relative difference of the floating ones). One process and alternated calls put a shared
machine's load on both alike.

Usage::

    python benchmarks/bench_binned_kernel.py --old /path/to/dc6afcb --n 1000000 --reps 20 \
        --rounds 5 --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _old_package(tree: Path, dest: Path) -> None:
    shutil.copytree(tree / "ecgaudit", dest / "oldeca",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for f in (dest / "oldeca").rglob("*.py"):
        text = f.read_text(encoding="utf-8")
        f.write_text(re.sub(r"\becgaudit\b", "oldeca", text), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, type=Path)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=20, help="replicates per kernel call")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ecgaudit-old-"))
    _old_package(args.old.resolve(), tmp)
    sys.path.insert(0, str(tmp))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_audit as ba
    import numba
    from oldeca.metrics import _binfused as old_fused

    from ecgaudit.metrics import _binfused as new_fused
    from ecgaudit.metrics._bootsample import Sampler
    from ecgaudit.metrics._cells import finest_strata
    from ecgaudit.metrics._evaluate import Evaluator
    from ecgaudit.metrics._fastboot import start_arrays
    from ecgaudit.metrics._hashrng import replicate_keys
    from ecgaudit.metrics._suffstats import SuffStats

    tasks, gs = ba._engine_inputs(ba.make_table(args.n))
    strata = finest_strata([g.codes for g in gs], args.n)
    sp = Sampler(strata.codes, None, 1)
    ev = Evaluator(tasks, gs, strata.codes, sp, engine="auto", bins=4096, clip=1e-6,
                   ece_bins=10, skip=frozenset())
    ev.estimates()
    e = ev._binned
    slot_cells = np.ascontiguousarray(e.cells[:, sp.unit_sorted])  # the old kernel's codes
    has_runs = "runs" in old_fused.binned_replicates.py_func.__code__.co_varnames
    a0, b0 = start_arrays(ev.starts, len(tasks), e.n_slots)

    def run(which: str, keys: np.ndarray, chunks: int) -> SuffStats:
        st = SuffStats.zeros(len(tasks), keys.size, n_slots=e.n_slots)
        rest = (e.n_fine * e.width, *e.plan, e.width, e.reps, e.thr_array, e.ece_bins,
                e.refslot, e.n_slots, e.coarse_stack, e.n_coarse, e.x_cal, a0, b0, True,
                st.ints, st.floats)
        if which == "old" and not has_runs:  # before the stratum-by-stratum draws
            old_fused.binned_replicates(keys, chunks, 255, sp.slot_start, sp.slot_size, e.ptr,
                                        slot_cells, *rest)
        elif which == "old":
            old_fused.binned_replicates(keys, chunks, 255, sp.slot_start, sp.slot_size, e.ptr,
                                        e.slot_cells, e.runs, *rest)
        else:
            new_fused.binned_replicates(keys, chunks, 255, sp.slot_start, sp.slot_size, e.ptr,
                                        e.slot_cells, e.runs, *rest)
        return st

    k0 = replicate_keys(1, range(4))
    a, b = run("old", k0, 2), run("new", k0, 2)
    fin = np.isfinite(a.floats)
    rel = np.abs(a.floats[fin] - b.floats[fin]) / np.maximum(np.abs(a.floats[fin]), 1e-300)
    res = {"n": args.n, "reps_per_call": args.reps,
           "ints_identical": bool(np.array_equal(a.ints, b.ints)),
           "floats_max_rel_diff": float(rel.max(initial=0.0)),
           "bit_identical": bool(np.array_equal(a.ints, b.ints)
                                 and np.array_equal(a.floats, b.floats, equal_nan=True))}
    keys = replicate_keys(1, range(args.reps))
    for threads in (1, 2):
        numba.set_num_threads(threads)
        wall: dict[str, list[float]] = {"old": [], "new": []}
        cpu: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(args.rounds):
            for which in ("old", "new") if i % 2 == 0 else ("new", "old"):
                t0, c0 = time.perf_counter(), time.process_time()
                run(which, keys, threads)
                wall[which].append((time.perf_counter() - t0) / args.reps * 1e3)
                cpu[which].append((time.process_time() - c0) / args.reps * 1e3)
        res[f"threads_{threads}"] = {
            w: {"wall_ms_per_rep": [round(x, 2) for x in wall[w]],
                "median_wall": round(float(np.median(wall[w])), 2),
                "min_cpu": round(min(cpu[w]), 2)} for w in wall}
    shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
