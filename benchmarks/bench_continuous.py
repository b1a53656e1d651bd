"""Benchmark: continuous-outcome audit with B = 1000 bootstrap replicates vs pandas.

Workload: a seeded synthetic potassium table (``make_synthetic_potassium``) with race
(5 groups), sex and 4 age bands and all pairwise intersections (56 groups + overall), one
``kind: continuous`` task with a tolerance (9 metrics per group, 8 disparities per
non-reference group). Cases, each in a fresh subprocess (kernels compiled or loaded from
numba's cache first, outside the timing):

* ``audit``   ``ecgaudit.audit`` with ``bootstrap: B``: validation, cohort, closed-form
              intervals, B stratified replicates for every metric and disparity, suppression,
              multiplicity, binned agreement curves;
* ``engine``  ``ContinuousSample.replicates(B)`` alone (the replicate sums and metrics);
* ``pandas``  a pandas bootstrap: per replicate, resample rows within the finest strata
              (``groupby(...).sample(frac=1, replace=True)``) and compute the same 9 metrics
              with ``groupby().agg`` for each of the 7 groupings; timed for ``--pandas-boot``
              replicates and extrapolated as ``t(point) + B x t(one replicate)``.

Usage::

    python benchmarks/bench_continuous.py --n 1000000 --boot 1000 --repeats 3 \
        --out benchmarks/results/bench_continuous_1m.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

TOL = 0.5


def make_table(n: int) -> pd.DataFrame:
    from ecgaudit.datasets import make_synthetic_potassium

    return make_synthetic_potassium(n, seed=0)


def make_config(boot: int) -> dict[str, Any]:
    return {"tasks": [{"name": "k", "kind": "continuous", "label": "k", "score": "k_hat",
                       "tolerance": TOL}],
            "attributes": {"race": {"reference": "White"}, "sex": {}, "age": {"kind": "age"}},
            "intersections": "pairs", "bootstrap": boot, "seed": 1}


def _pandas_metrics(df: pd.DataFrame, keys: list[list[str]]) -> list[pd.DataFrame]:
    out = []
    for key in keys:
        g = df.groupby(key, observed=True) if key else df.groupby(np.zeros(len(df)))
        a = g.agg(bias=("d", "mean"), mae=("ad", "mean"), mse=("d2", "mean"),
                  sd=("d", "std"), tol=("within", "mean"), mx=("k_hat", "mean"),
                  my=("k", "mean"), vx=("k_hat", "var"), vy=("k", "var"))
        cov = g[["k_hat", "k"]].cov().xs("k_hat", level=-1)["k"]
        a["rmse"] = np.sqrt(a["mse"])
        a["loa_lower"] = a["bias"] - 1.96 * a["sd"]
        a["loa_upper"] = a["bias"] + 1.96 * a["sd"]
        a["slope"] = cov.to_numpy() / a["vx"]
        a["intercept"] = a["my"] - a["slope"] * a["mx"]
        a["r2"] = 1 - a["mse"] / (a["vy"] * (g.size() - 1) / g.size())
        out.append(a)
    return out


def _pandas_case(df: pd.DataFrame, reps: int) -> dict[str, float]:
    from ecgaudit.cohort import build_cohort
    from ecgaudit.config import parse_config

    cohort = build_cohort(df, parse_config(make_config(0)))
    frame = df.assign(d=df.k_hat - df.k)
    frame = frame.assign(ad=frame.d.abs(), d2=frame.d**2, within=frame.d.abs() <= TOL)
    for g in cohort.groupings:
        if g.attribute != "overall":
            frame[f"g:{g.attribute}"] = np.asarray(g.codes)
    keys = [[]] + [[c] for c in frame.columns if c.startswith("g:")]
    strata = [c for c in frame.columns if c.startswith("g:") and " & " not in c]
    t0 = time.perf_counter()
    _pandas_metrics(frame, keys)
    t_point = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    for b in range(reps):
        sample = frame.groupby(strata, observed=True).sample(frac=1.0, replace=True,
                                                            random_state=b)
        _pandas_metrics(sample, keys)
    per_rep = (time.perf_counter() - t0) / reps
    return {"point_s": t_point, "per_replicate_s": per_rep,
            "per_replicate_cpu_s": (time.process_time() - c0) / reps}


def run_case(case: str, n: int, boot: int, pandas_boot: int) -> dict[str, Any]:
    import ecgaudit
    from ecgaudit.cohort import build_cohort
    from ecgaudit.config import parse_config
    from ecgaudit.metrics._contboot import ContinuousSample

    ecgaudit.audit(make_table(2000), make_config(3))  # compile / load kernels
    df = make_table(n)
    out: dict[str, Any] = {"case": case, "n": n}
    c0 = time.process_time()
    if case == "audit":
        t0 = time.perf_counter()
        res = ecgaudit.audit(df, make_config(boot))
        out["seconds"] = time.perf_counter() - t0
        out["cpu_s"] = time.process_time() - c0
        out["groups"] = int(len(res.metrics) / 9)
    elif case == "engine":
        gs = build_cohort(df, parse_config(make_config(0))).groupings
        t0 = time.perf_counter()
        cs = ContinuousSample(df.k.to_numpy(), df.k_hat.to_numpy(), [g.codes for g in gs],
                              [len(g.groups) for g in gs], tolerance=TOL, seed=1)
        cs.replicates(boot)
        out["seconds"] = time.perf_counter() - t0
        out["cpu_s"] = time.process_time() - c0
    else:
        out.update(_pandas_case(df, pandas_boot))
        out["seconds_extrapolated"] = out["point_s"] + boot * out["per_replicate_s"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["peak_rss_mb"] = usage.ru_maxrss / 1024
    out["cpu_s_total_process"] = usage.ru_utime + usage.ru_stime  # includes set-up
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--pandas-boot", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--case", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.n, args.boot, args.pandas_boot)))
        return
    results: dict[str, Any] = {"n": args.n, "boot": args.boot, "cases": {}}
    for case in ("audit", "engine", "pandas"):
        runs = []
        for _ in range(args.repeats if case != "pandas" else 1):
            cmd = [sys.executable, __file__, "--case", case, "--n", str(args.n), "--boot",
                   str(args.boot), "--pandas-boot", str(args.pandas_boot)]
            proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        key = "seconds_extrapolated" if case == "pandas" else "seconds"
        results["cases"][case] = {"runs": runs,
                                  "median_s": statistics.median(r[key] for r in runs)}
        print(case, results["cases"][case]["median_s"], flush=True)
    ratio = results["cases"]["pandas"]["median_s"] / results["cases"]["audit"]["median_s"]
    results["pandas_over_audit"] = ratio
    print(f"pandas / ecgaudit audit: {ratio:.1f}x")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
