"""Time the committee views: age curves (kernel sums x bootstrap) and controlled disparities.

    PYTHONPATH=. python benchmarks/bench_views.py --n 100000 --boot 1000 \
        --out benchmarks/results/bench_views_100k.json

Times the views' own work (curves with bands; controlled disparities) on a synthetic
cohort, compiled engine, median of ``--repeat`` runs after one warm-up (numba compile).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import pandas as pd

from ecgaudit.cohort import build_cohort
from ecgaudit.config import parse_config
from ecgaudit.pipeline._curves import build_curves
from ecgaudit.pipeline._views import controlled_rows


def cohort(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.25).astype(np.int8)
    return pd.DataFrame({
        "y:t": y, "p:t": 1 / (1 + np.exp(-(-1 + 1.8 * (y - 0.5) + rng.normal(size=n)))),
        "sex": rng.choice(["female", "male"], n), "site": rng.choice(list("ABCDE"), n),
        "age": rng.uniform(20, 95, n).round()})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--grid", type=int, default=25)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    frame = cohort(a.n)
    cfg = parse_config({
        "tasks": [{"name": "t", "label": "y", "score": "p"}],
        "attributes": {"sex": {}, "site": {}, "age": {"kind": "age"}},
        "intersections": "none", "bootstrap": a.boot, "control": ["site"],
        "continuous_axes": {"age": {"by": ["sex"], "grid_points": a.grid}}})
    c = build_cohort(frame, cfg)
    th = {"t": {"value": 0.4}}
    units = {g.attribute: g.sizes() for g in c.groupings}
    # the timing covers the computation; nothing is withheld (no crude table is built here)
    no_suppression = pd.DataFrame(columns=["task", "attribute", "group", "metric", "status",
                                           "reason"])
    timings: dict[str, list[float]] = {"curves": [], "controlled": []}
    for k in range(a.repeat + 1):
        t0 = time.perf_counter()
        build_curves(frame, c, cfg, th, None, units)
        t1 = time.perf_counter()
        controlled_rows(frame, c, cfg, th, no_suppression)
        t2 = time.perf_counter()
        if k:
            timings["curves"].append(t1 - t0)
            timings["controlled"].append(t2 - t1)
    out = {"n": a.n, "bootstrap": a.boot, "grid_points": a.grid,
           "panels": "overall + 2 sex groups, 4 metrics", "control": "site (5 strata)",
           **{f"{k}_median_s": round(statistics.median(v), 3) for k, v in timings.items()},
           "note": "shared 2-core machine: upper bounds"}
    print(json.dumps(out, indent=2))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
