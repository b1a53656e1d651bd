"""Benchmark: survival audit (every metric, B bootstrap replicates) vs scikit-survival loops.

Workload: a seeded Weibull cohort of ``n`` patients with race (5 groups), sex (2) and age
(4 bands) and their pairwise intersections: 1 + 5 + 2 + 4 + 10 + 20 + 8 = 50 groups; one
survival task with a probability score and 2 horizons. Timed:

* ``audit``   ``ecgaudit.audit`` with ``bootstrap: b`` (every metric of the table at both
              horizons, every difference/ratio vs the reference, IJ variances,
              suppression, multiplicity), after the kernels are compiled on a small table;
* ``sksurv``  one pass of scikit-survival over the 50 groups: ``concordance_index_censored``,
              ``concordance_index_ipcw``, ``cumulative_dynamic_auc`` and ``brier_score`` at
              both horizons and ``integrated_brier_score`` (fewer metrics than ecgaudit:
              no O/E, ICI, threshold rates, differences). A bootstrap costs B + 1 such
              passes; the total is extrapolated linearly by rows from the
              ``--sksurv-groups`` smallest groups and one pass. scikit-survival's Harrell
              loop is superlinear in the group size, so this underestimates its cost on
              the large groups: the ratio is a lower bound.

Usage::

    python benchmarks/bench_survival.py --n 100000 --boot 1000 --out benchmarks/results/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import numpy as np
import pandas as pd

import ecgaudit


def cohort(n: int, seed: int = 0) -> pd.DataFrame:
    """The seeded benchmark cohort."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    te = rng.weibull(1.3, n) * 1500 * np.exp(-0.7 * x / 1.3)
    tc = rng.uniform(400, 3000, n)
    return pd.DataFrame({
        "t": np.round(np.minimum(te, tc), 1), "e": (te <= tc).astype(int),
        "p": np.round(1 / (1 + np.exp(-(x - 0.8))), 6),
        "race": rng.choice(["A", "B", "C", "D", "E"], n, p=[0.5, 0.2, 0.15, 0.1, 0.05]),
        "sex": rng.choice(["female", "male"], n),
        "age": rng.integers(20, 95, n).astype(float),
    })


def config(boot: int) -> dict[str, Any]:
    """Audit config of the benchmark."""
    return {"tasks": [{"name": "death", "kind": "survival", "time": "t", "event": "e",
                       "score": "p", "horizons": [365, 1095]}],
            "attributes": {"race": {}, "sex": {}, "age": {"kind": "age"}},
            "bootstrap": boot, "seed": 1}


def time_audit(frame: pd.DataFrame, boot: int) -> tuple[float, int, float]:
    """Wall seconds of one audit, the number of groups, and CPU seconds (all threads)."""
    ecgaudit.audit(cohort(2000, 5), config(4))  # compile / load the kernels
    c0 = time.process_time()
    t0 = time.perf_counter()
    r = ecgaudit.audit(frame, config(boot))
    dt = time.perf_counter() - t0
    return dt, int(r.metrics.groupby(["attribute", "group"]).ngroups), time.process_time() - c0


def _groups(frame: pd.DataFrame) -> list[np.ndarray]:
    bands = pd.cut(frame.age, [-np.inf, 40, 60, 80, np.inf], right=False).astype(str)
    cols = {"race": frame.race, "sex": frame.sex, "age": bands}
    out = [np.arange(len(frame))]
    for combo in (["race"], ["sex"], ["age"], ["race", "sex"], ["race", "age"],
                  ["sex", "age"]):
        key = cols[combo[0]].astype(str).to_numpy()
        for c in combo[1:]:
            key = key + " & " + cols[c].astype(str).to_numpy()
        out += [np.flatnonzero(key == k) for k in pd.unique(key)]
    return out


def time_sksurv(frame: pd.DataFrame, max_groups: int) -> dict[str, Any]:
    """One scikit-survival pass over (the smallest ``max_groups`` of) the 50 groups."""
    from sksurv.metrics import (
        brier_score,
        concordance_index_censored,
        concordance_index_ipcw,
        cumulative_dynamic_auc,
        integrated_brier_score,
    )
    from sksurv.util import Surv

    groups = sorted(_groups(frame), key=len)
    total_rows = sum(len(g) for g in groups)
    chosen = groups[:max_groups]
    hs = np.array([365.0, 1095.0])
    t0 = time.perf_counter()
    for g in chosen:
        sub = frame.iloc[g]
        y = Surv.from_arrays(sub.e.to_numpy().astype(bool), sub.t.to_numpy())
        s = sub.p.to_numpy()
        surv = np.column_stack([1 - s, 1 - s])
        concordance_index_censored(y["event"], y["time"], s)
        concordance_index_ipcw(y, y, s, tau=hs[-1])
        cumulative_dynamic_auc(y, y, s, hs)
        brier_score(y, y, surv, hs)
        integrated_brier_score(y, y, surv, hs)
    dt = time.perf_counter() - t0
    rows = sum(len(g) for g in chosen)
    return {"seconds_measured": dt, "groups_measured": len(chosen), "rows_measured": rows,
            "rows_all_groups": total_rows,
            # Harrell's loop in scikit-survival is O(events x n) per group: extrapolating
            # by rows from the smallest groups underestimates the cost of the large ones.
            "seconds_one_pass_extrapolated": dt * total_rows / rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--sksurv-groups", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip-sksurv", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    frame = cohort(args.n)
    runs = [time_audit(frame, args.boot) for _ in range(args.repeats)]
    audit_s = float(np.median([r[0] for r in runs]))
    cpu_s = float(np.median([r[2] for r in runs]))
    print(f"audit: {audit_s:.1f} s wall, {cpu_s:.1f} s CPU (B = {args.boot})", flush=True)
    if args.skip_sksurv:
        print(json.dumps({"n": args.n, "boot": args.boot, "audit_seconds_median": audit_s,
                          "audit_cpu_seconds_median": cpu_s}))
        return
    sk = time_sksurv(frame, args.sksurv_groups)
    sk_total = sk["seconds_one_pass_extrapolated"] * (args.boot + 1)
    res = {"n": args.n, "boot": args.boot, "groups": runs[0][1], "horizons": 2,
           "audit_seconds_median": audit_s, "audit_seconds_all": [r[0] for r in runs],
           "audit_cpu_seconds_median": cpu_s, "load_average": list(os.getloadavg()),
           "sksurv": sk, "sksurv_seconds_bootstrap_extrapolated": sk_total,
           "ratio": sk_total / audit_s, "machine": platform.platform(),
           "note": "shared 2-core machine: timings are upper bounds"}
    print(json.dumps(res, indent=2))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
