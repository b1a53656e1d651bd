"""``auc_score_limits`` (and the point estimates that call it) old vs new (issue 19 item 5).

Run once per checkout, each imported through ``PYTHONPATH``::

    PYTHONPATH=OLD python benchmarks/bench_score_limits.py --n 200000
    PYTHONPATH=.   python benchmarks/bench_score_limits.py --n 200000

* ``scalar_300_s``: 300 scalar calls as ``stats_from_estimates`` makes them (one group's
  AUROC, positives, negatives, the 95% quantile, a design effect), median of ``--repeats``;
* ``points_s``: ``group_point_estimates`` on ``bench_audit.py``'s seeded 5-task table of
  ``--n`` rows (the compiled kernels warmed on 2,000 rows first), median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def scalar_calls(calls: int = 300) -> float:
    """Seconds for ``calls`` scalar ``auc_score_limits`` calls."""
    import numpy as np

    from ecgaudit.metrics._smallsample import auc_score_limits, z_of

    rng = np.random.default_rng(0)
    auc = rng.uniform(0.5, 1.0, calls)
    m, n = rng.integers(5, 20000, calls), rng.integers(50, 200000, calls)
    z = z_of(0.95)
    auc_score_limits(0.8, 10, 100, z)  # compiled outside the timed region
    t = time.perf_counter()
    for i in range(calls):
        auc_score_limits(float(auc[i]), int(m[i]), int(n[i]), z, 1.0)
    return time.perf_counter() - t


def points(n: int, repeats: int) -> float:
    """Median seconds of ``group_point_estimates`` at ``n`` rows x 5 tasks."""
    from bench_audit import case_points, make_table

    case_points(make_table(2000))
    df = make_table(n)
    return statistics.median(case_points(df)["seconds"] for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import ecgaudit

    out = {"checkout": str(Path(ecgaudit.__file__).resolve().parent.parent),
           "scalar_300_s": statistics.median(scalar_calls() for _ in range(args.repeats)),
           "points_s": points(args.n, args.repeats),
           "n": args.n, "repeats": args.repeats}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
