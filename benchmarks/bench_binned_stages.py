"""Where a binned replicate's CPU time goes: the fused kernel's stages, one thread.

Builds the binned engine of ``bench_audit``'s table (5 tasks x 57 groups, 4096 bins) and
runs the per-replicate steps of ``_binfused.binned_replicates`` cumulatively in one thread:
draws + stratum sweeps, + group cells, + scans, + coarsening, + recalibration fits. Each
stage's figure is the difference of two cumulative runs (minimum CPU time of ``--rounds``).

Usage::

    python benchmarks/bench_binned_stages.py --n 1000000 --reps 20 --rounds 3 --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

STAGES = ("draws_and_sweeps", "group_cells", "scans", "coarsening", "fits")


def _driver():  # type: ignore[no-untyped-def]
    from numba import njit

    from ecgaudit.metrics import _binkernels
    from ecgaudit.metrics._binfused import fit_cells
    from ecgaudit.metrics._binkernels import coarsen_one, marginalize_one, scan_one
    from ecgaudit.metrics._binsweep import draw_sweep

    if hasattr(_binkernels, "scan_coarsen_one"):  # coarse cells from the scan's prefix
        scan_coarsen_one = _binkernels.scan_coarsen_one

        @njit(nogil=True)
        def scan(level, cells, rep, thr, ece_bins, refslot, n_s, ist, fst, coarse_of,
                 n_coarse, coarse):
            if level < 3:
                scan_one(cells, rep, thr, ece_bins, refslot, n_s, ist, fst)
            else:
                scan_coarsen_one(cells, rep, thr, ece_bins, refslot, n_s, ist, fst, coarse_of,
                                 n_coarse, coarse)
    else:  # a tree before w19boot2: coarsening is its own pass

        @njit(nogil=True)
        def scan(level, cells, rep, thr, ece_bins, refslot, n_s, ist, fst, coarse_of,
                 n_coarse, coarse):
            scan_one(cells, rep, thr, ece_bins, refslot, n_s, ist, fst)
            if level >= 3:
                coarsen_one(cells, n_s, coarse_of, n_coarse, coarse)

    @njit(nogil=True)
    def drive(level, keys, bounds, run_stratum, rel, width, n_cells, kinds, srcs, dsts, reps,
              thr, ece_bins, refslot, n_s, coarse_of, n_coarse, x_cal, a0, b0, ist, fst):
        n_t = rel.shape[0]
        cnt = np.empty(rel.shape[1], dtype=np.uint8)
        ovf = np.empty(rel.shape[1], dtype=np.int64)
        acc = np.zeros(n_t * n_cells, dtype=np.int32)
        cells = np.empty((n_s + 1) * width, dtype=np.int32)
        coarse = np.empty(n_s * n_coarse * 2, dtype=np.int32)
        for r in range(keys.size):
            draw_sweep(keys[r], 255, bounds, run_stratum, rel, width, n_cells, cnt, ovf, acc)
            for t in range(n_t):
                if level < 1:
                    break
                marginalize_one(acc[t * n_cells:(t + 1) * n_cells], kinds, srcs, dsts, width,
                                cells)
                if level < 2:
                    continue
                scan(level, cells, reps[t], thr[t], ece_bins, refslot, n_s, ist[t, r],
                     fst[t, r], coarse_of[t], n_coarse, coarse)
                if level < 4:
                    continue
                fit_cells(coarse, n_coarse, x_cal[t], a0[t], b0[t], fst[t, r, 4], fst[t, r, 5])

    return drive


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_audit as ba

    from ecgaudit.metrics._bootsample import Sampler
    from ecgaudit.metrics._cells import finest_strata
    from ecgaudit.metrics._evaluate import Evaluator
    from ecgaudit.metrics._fastboot import start_arrays
    from ecgaudit.metrics._hashrng import replicate_keys

    tasks, gs = ba._engine_inputs(ba.make_table(args.n))
    strata = finest_strata([g.codes for g in gs], args.n)
    ev = Evaluator(tasks, gs, strata.codes, Sampler(strata.codes, None, 1), engine="auto",
                   bins=4096, clip=1e-6, ece_bins=10, skip=frozenset())
    ev.estimates()
    e = ev._binned
    a0, b0 = start_arrays(ev.starts, len(tasks), e.n_slots)
    keys = replicate_keys(1, range(args.reps))
    ist = np.zeros((len(tasks), args.reps, 9, e.n_slots), dtype=np.int64)
    fst = np.zeros((len(tasks), args.reps, 8, e.n_slots))
    drive = _driver()

    def run(level: int, k: np.ndarray) -> None:
        drive(level, k, *e.runs, e.width, e.n_fine * e.width, *e.plan, e.reps, e.thr_array,
              e.ece_bins, e.refslot, e.n_slots, e.coarse_stack, e.n_coarse, e.x_cal, a0, b0,
              ist, fst)

    run(4, keys[:1])  # compile
    cumulative = []
    for level in range(len(STAGES)):
        best = np.inf
        for _ in range(args.rounds):
            c0 = time.process_time()
            run(level, keys)
            best = min(best, time.process_time() - c0)
        cumulative.append(best / args.reps * 1e3)
    stages = {s: round(c - (cumulative[i - 1] if i else 0.0), 3)
              for i, (s, c) in enumerate(zip(STAGES, cumulative))}
    res = {"n": args.n, "reps": args.reps, "rounds": args.rounds,
           "cpu_ms_per_replicate": stages, "total_cpu_ms": round(cumulative[-1], 3)}
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
