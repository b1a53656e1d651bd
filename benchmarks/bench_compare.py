"""Benchmark: ``ecgaudit compare`` paired bootstrap, compiled kernel vs the previous numpy path.

Workload: ``make_synthetic_cohort(n, tasks=5)`` (race 5 groups + Unknown, sex, 4 age bands, all
pairwise intersections: 57 groups per task) as the baseline; the candidate is the same table with
every score perturbed by seeded noise. Timed: ``compare_predictions`` (paired DeLong for AUROC,
paired bootstrap for the other 11 metrics, per task x group) at ``--boot`` replicates, after the
kernel is compiled on a small table.

The previous path (``numpy.random.Generator.integers`` over units, ``bincount`` into a dense
replicates x units weight matrix, matmul; kept here as ``_old_replicate_changes``) is timed at
``--old-boot`` replicates on the sizes of ``--old-sizes``; the time spent inside the bootstrap
step (``_paired._replicate_changes``) is clocked for both paths, and the old path's B =
``--boot`` time is extrapolated as ``t(B = 0) + boot x`` its seconds per replicate.

Usage::

    python benchmarks/bench_compare.py --sizes 200000 1000000 --boot 1000 \\
        --out benchmarks/results/bench_compare.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd

TASKS = [f"t{i}" for i in range(5)]


def tables(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Baseline and candidate predictions of the same ``n`` ECGs."""
    from ecgaudit.datasets import make_synthetic_cohort

    base = make_synthetic_cohort(n, seed=0, tasks=TASKS).frame
    cand = base.copy()
    rng = np.random.default_rng(1)
    for t in TASKS:
        cand[f"p_{t}"] = np.clip(base[f"p_{t}"] + rng.normal(0, 0.05, n), 0, 1)
    return base, cand


def config() -> Any:
    """Audit config of the benchmark (57 groups per task)."""
    from ecgaudit.config import AttributeConfig, AuditConfig, TaskConfig

    return AuditConfig(
        tasks=[TaskConfig(name=t, label=f"y_{t}", score=f"p_{t}") for t in TASKS],
        attributes={"race": AttributeConfig(), "sex": AttributeConfig(),
                    "age": AttributeConfig(kind="age")},
        id_column="ecg_id", patient_column="patient_id", seed=1)


def _old_one_task(sums: np.ndarray, n_boot: int, rng: np.random.Generator
                  ) -> dict[str, np.ndarray]:
    """The previous numpy path: dense weight matrix from ``Generator.integers``, matmul."""
    from ecgaudit.metrics._paired import _metrics_from_sums

    k = sums.shape[0]
    reps: dict[str, list[np.ndarray]] = {m: [] for m in _metrics_from_sums(sums.sum(axis=0))}
    chunk = max(1, min(n_boot, 2_000_000 // max(k, 1)))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        draws = rng.integers(0, k, size=(b, k)) + (np.arange(b) * k)[:, None]
        w = np.bincount(draws.ravel(), minlength=b * k).reshape(b, k).astype(float)
        for m, (vb, vc) in _metrics_from_sums(w @ sums).items():
            reps[m].append(vc - vb)
        done += b
    return {m: np.concatenate(r) if r else np.array([]) for m, r in reps.items()}


def _old_replicate_changes(sums: np.ndarray, n_boot: int, rng: np.random.Generator
                           ) -> list[dict[str, np.ndarray]]:
    """The previous path, one task (12 columns of ``sums``) after the other."""
    from ecgaudit.metrics._paired import N_SUMS

    return [_old_one_task(sums[:, c:c + N_SUMS], n_boot, rng)
            for c in range(0, sums.shape[1], N_SUMS)]


def timed(base: pd.DataFrame, cand: pd.DataFrame, boot: int, repeats: int,
          old: bool = False) -> tuple[list[float], list[float]]:
    """Wall seconds of ``repeats`` comparisons, and of their bootstrap step alone."""
    from ecgaudit.metrics import _paired
    from ecgaudit.pipeline import compare_predictions

    new = _paired._replicate_changes
    inner = _old_replicate_changes if old else new
    spent = [0.0]

    def clocked(*args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args)
        finally:
            spent[0] += time.perf_counter() - t0

    _paired._replicate_changes = clocked
    try:
        out, boot_s = [], []
        for _ in range(repeats):
            spent[0] = 0.0
            t0 = time.perf_counter()
            compare_predictions(base, cand, config(), n_boot=boot)
            out.append(time.perf_counter() - t0)
            boot_s.append(spent[0])
        return out, boot_s
    finally:
        _paired._replicate_changes = new


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--old-sizes", type=int, nargs="*", default=[200_000])
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--old-boot", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big-repeats", type=int, default=1, help="repeats at n >= 1M")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    w_base, w_cand = tables(2000)
    timed(w_base, w_cand, 10, 1)                      # compile / load the kernel
    rows = []
    for n in args.sizes:
        base, cand = tables(n)
        reps = args.big_repeats if n >= 1_000_000 else args.repeats
        t_zero, _ = timed(base, cand, 0, reps)
        t_new, b_new = timed(base, cand, args.boot, reps)
        row: dict[str, Any] = {"n": n, "tasks": len(TASKS), "boot": args.boot,
                               "point_only_s": statistics.median(t_zero),
                               "new_s": statistics.median(t_new), "new_runs_s": t_new,
                               "new_bootstrap_s_per_replicate":
                                   statistics.median(b_new) / max(args.boot, 1)}
        if n in args.old_sizes:
            t_old, b_old = timed(base, cand, args.old_boot, reps, old=True)
            per_rep = statistics.median(b_old) / args.old_boot
            row.update(old_boot=args.old_boot, old_s_at_old_boot=statistics.median(t_old),
                       old_bootstrap_s_per_replicate=per_rep,
                       old_s_extrapolated=row["point_only_s"] + args.boot * per_rep)
            row["speedup_total"] = row["old_s_extrapolated"] / row["new_s"]
            row["speedup_bootstrap"] = per_rep / row["new_bootstrap_s_per_replicate"]
        rows.append(row)
        print(json.dumps(row))
    res = {"benchmark": "bench_compare", "rows": rows, "python": platform.python_version(),
           "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
           "note": "shared machine (7 engineers on 2 cores): timings are upper bounds"}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
