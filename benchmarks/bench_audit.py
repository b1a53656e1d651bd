"""Benchmark: ecgaudit audit with bootstrap intervals vs fairlearn MetricFrame vs a naive loop.

Builds a seeded synthetic table (``ecgaudit.datasets.make_synthetic_cohort``: race with 5
unbalanced groups + Unknown, sex, 4 age bands, all pairwise intersections -> 57 groups;
5 tasks) and times, side by side in one run:

* ``audit_point``   ``ecgaudit.audit`` without bootstrap (point estimates, DeLong/Wilson CIs,
                    disparities, tests, suppression);
* ``audit_boot``    ``ecgaudit.audit`` with ``bootstrap: b`` (every metric and disparity);
* ``engine``        ``bootstrap_intervals`` alone with ``b`` replicates;
* ``delong``        DeLong AUROC variance of every group of one task;
* ``fairlearn``     ``MetricFrame`` per grouping and task on the metrics it can compute
                    (AUROC, AUPRC, Brier, the 7 threshold rates) with ``n_boot = fb`` and with
                    no bootstrap; per-replicate cost = difference / fb;
* ``naive``         a per-group loop over scikit-learn metrics (+ statsmodels-free logistic
                    recalibration via ``ecgaudit.metrics.logistic_recalibration`` and ECE):
                    one pass = what one bootstrap replicate costs a naive implementation.

B = 1000 costs are extrapolated linearly from ``b`` (resp. ``fb``) replicates: every method's
cost is (fixed part) + B x (per-replicate part), and each part is measured. Every case runs
in a fresh subprocess (peak RSS = that process's maximum resident set); medians of
``--repeats`` runs are reported.

Usage::

    python benchmarks/bench_audit.py --n 100000 --boot 4 --fairlearn-boot 2 --repeats 3
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

TASKS = [f"t{i}" for i in range(5)]
B_TARGET = 1000


def make_table(n: int) -> pd.DataFrame:
    from ecgaudit.datasets import make_synthetic_cohort

    return make_synthetic_cohort(
        n, seed=0, tasks=TASKS, group_separation={"Black": 1.2}, group_shift={"Asian": 0.4}
    ).frame


def make_config(boot: int, metrics_seed: int = 1, bins: int | None = None):
    from ecgaudit.config import AttributeConfig, AuditConfig, TaskConfig

    return AuditConfig(
        tasks=[TaskConfig(name=t, label=f"y_{t}", score=f"p_{t}") for t in TASKS],
        attributes={"race": AttributeConfig(), "sex": AttributeConfig(),
                    "age": AttributeConfig(kind="age")},
        bootstrap=boot, seed=metrics_seed, bootstrap_bins=bins,
    )


def groupings(df: pd.DataFrame):
    from ecgaudit.cohort import build_cohort

    return build_cohort(df, make_config(0)).groupings


def _warm() -> None:
    """Compile (or load from numba's cache) the kernels outside the timed region."""
    import ecgaudit

    small = make_table(2000)
    ecgaudit.audit(small, make_config(2))
    ecgaudit.audit(small, make_config(2, bins=4096))


def case_audit(df: pd.DataFrame, boot: int, bins: int | None = None) -> dict[str, Any]:
    import ecgaudit

    t = time.perf_counter()
    res = ecgaudit.audit(df, make_config(boot, bins=bins))
    return {"seconds": time.perf_counter() - t, "rows": len(res.metrics),
            "groups": int(res.metrics.groupby(["attribute", "group"]).ngroups)}


def _engine_inputs(df: pd.DataFrame):
    from ecgaudit.metrics._bootstrap import Grouping, TaskArrays

    gs = [Grouping(g.attribute, g.codes, g.groups, g.reference) for g in groupings(df)]
    tasks = [TaskArrays(t, df[f"y_{t}"].to_numpy(np.int8), df[f"p_{t}"].to_numpy(float), 0.5)
             for t in TASKS]
    return tasks, gs


def case_engine(df: pd.DataFrame, boot: int, bins: int | None = None) -> dict[str, Any]:
    from ecgaudit.metrics._bootstrap import bootstrap_intervals

    tasks, gs = _engine_inputs(df)
    t = time.perf_counter()
    bootstrap_intervals(tasks, gs, n_boot=boot, seed=1, bins=bins)
    return {"seconds": time.perf_counter() - t}


def case_points(df: pd.DataFrame) -> dict[str, Any]:
    """Point estimates, DeLong/Wilson intervals and statuses of every group and task."""
    from ecgaudit.metrics import group_point_estimates

    tasks, gs = _engine_inputs(df)
    t = time.perf_counter()
    group_point_estimates(tasks, gs)
    return {"seconds": time.perf_counter() - t}


def case_delong(df: pd.DataFrame) -> dict[str, Any]:
    """DeLong AUROC variance of every group of one task (one engine pass, no calibration)."""
    from ecgaudit.metrics._bootsample import Sampler
    from ecgaudit.metrics._cells import finest_strata
    from ecgaudit.metrics._evaluate import Evaluator

    tasks, gs = _engine_inputs(df)
    t = time.perf_counter()
    strata = finest_strata([g.codes for g in gs], len(df))
    ev = Evaluator(tasks[:1], gs, strata.codes, Sampler(strata.codes, None, 0),
                   engine="auto", bins=None, clip=1e-6, ece_bins=10,
                   skip=frozenset({"cal_intercept", "cal_slope"}))
    ev.estimates()
    return {"seconds": time.perf_counter() - t}


def case_delong_rows(df: pd.DataFrame) -> dict[str, Any]:
    """The same with ``delong_auc_variance`` (midranks) group by group."""
    from ecgaudit.metrics import delong_auc_variance

    gs = groupings(df)
    y, p = df["y_t0"].to_numpy(), df["p_t0"].to_numpy()
    t = time.perf_counter()
    for g in gs:
        for k in range(len(g.groups)):
            m = g.codes == k
            delong_auc_variance(y[m], p[m])
    return {"seconds": time.perf_counter() - t}


def _rates(t: float):
    """Threshold rates as plain numpy functions (fast: fairlearn calls each separately)."""

    def div(a: float, b: float) -> float:
        return a / b if b else float("nan")

    def tp(y, p):
        return float(np.sum((p >= t) & (y == 1)))

    def fp(y, p):
        return float(np.sum((p >= t) & (y == 0)))

    def pos(y, p):
        return float(np.sum(y == 1))

    def neg(y, p):
        return float(np.sum(y == 0))

    return {
        "sensitivity": lambda y, p: div(tp(y, p), pos(y, p)),
        "specificity": lambda y, p: div(neg(y, p) - fp(y, p), neg(y, p)),
        "ppv": lambda y, p: div(tp(y, p), tp(y, p) + fp(y, p)),
        "npv": lambda y, p: div(neg(y, p) - fp(y, p), y.size - tp(y, p) - fp(y, p)),
        "fnr": lambda y, p: div(pos(y, p) - tp(y, p), pos(y, p)),
        "fpr": lambda y, p: div(fp(y, p), neg(y, p)),
        "flag_rate": lambda y, p: float(np.mean(p >= t)),
    }


def _fairlearn_metrics() -> dict[str, Any]:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    return {"auroc": roc_auc_score, "auprc": average_precision_score,
            "brier": brier_score_loss, **_rates(0.5)}


def case_fairlearn(df: pd.DataFrame, boot: int) -> dict[str, Any]:
    import warnings

    from fairlearn.metrics import MetricFrame

    cols = {"race": df["race"].fillna("Unknown").astype(str), "sex": df["sex"].astype(str),
            "age": pd.cut(df["age"], [-np.inf, 40, 60, 80, np.inf], right=False,
                          labels=["<40", "40-59", "60-79", "80+"]).astype(str)}
    sets = [["race"], ["sex"], ["age"], ["race", "sex"], ["race", "age"], ["sex", "age"]]
    metrics = _fairlearn_metrics()
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for task in TASKS:
            y, p = df[f"y_{task}"].to_numpy(), df[f"p_{task}"].to_numpy()
            for s in sets:
                sf = pd.DataFrame({c: cols[c] for c in s})
                kw: dict[str, Any] = {}
                if boot:
                    kw = {"n_boot": boot, "ci_quantiles": [0.025, 0.975], "random_state": 1}
                MetricFrame(metrics=metrics, y_true=y, y_pred=p, sensitive_features=sf, **kw)
    return {"seconds": time.perf_counter() - t}


def case_naive(df: pd.DataFrame) -> dict[str, Any]:
    """One pass of a per-group scikit-learn loop over all 14 metrics (= one replicate)."""
    from sklearn.metrics import (
        average_precision_score,
        brier_score_loss,
        confusion_matrix,
        roc_auc_score,
    )

    from ecgaudit.metrics import ece, logistic_recalibration

    gs = groupings(df)
    t = time.perf_counter()
    for task in TASKS:
        y, p = df[f"y_{task}"].to_numpy(), df[f"p_{task}"].to_numpy()
        for g in gs:
            for k in range(len(g.groups)):
                m = g.codes == k
                yy, pp = y[m], p[m]
                if 0 < yy.sum() < yy.size:
                    roc_auc_score(yy, pp)
                    average_precision_score(yy, pp)
                    logistic_recalibration(yy, pp)
                brier_score_loss(yy, pp)
                float(yy.sum() / pp.sum())
                ece(yy, pp)
                tn, fp, fn, tp = confusion_matrix(yy, (pp >= 0.5).astype(int),
                                                  labels=[0, 1]).ravel()
                _ = (tp / max(tp + fn, 1), tn / max(tn + fp, 1), tp / max(tp + fp, 1),
                     tn / max(tn + fn, 1), (tp + fp) / yy.size)
    return {"seconds": time.perf_counter() - t}


def run_case(name: str, n: int, boot: int, bins: int | None) -> dict[str, Any]:
    if name in ("audit", "engine", "points", "delong"):
        _warm()
    df = make_table(n)
    if name == "audit":
        out = case_audit(df, boot, bins)
    elif name == "engine":
        out = case_engine(df, boot, bins)
    elif name == "points":
        out = case_points(df)
    elif name == "delong":
        out = case_delong(df)
    elif name == "delong_rows":
        out = case_delong_rows(df)
    elif name == "fairlearn":
        out = case_fairlearn(df, boot)
    else:
        out = case_naive(df)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def measure(name: str, n: int, boot: int, repeats: int, bins: int | None) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        cmd = [sys.executable, __file__, "--case", name, "--n", str(n), "--boot", str(boot)]
        if bins:
            cmd += ["--bins", str(bins)]
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "runs": [round(r["seconds"], 3) for r in runs],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--boot", type=int, default=4, help="replicates actually run (ecgaudit)")
    ap.add_argument("--fairlearn-boot", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fairlearn-repeats", type=int, default=1,
                    help="repeats of the (slow) fairlearn cases")
    ap.add_argument("--bins", type=int, default=4096,
                    help="score bins of the binned cases (audit_binned, engine_binned)")
    ap.add_argument("--case", default=None)
    ap.add_argument("--skip", default="", help="comma-separated cases to skip")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.n, args.boot, args.bins if "--bins" in
                                  sys.argv else None)))
        return
    skip = set(filter(None, args.skip.split(",")))
    n, b, fb, r = args.n, args.boot, args.fairlearn_boot, args.repeats
    fr = args.fairlearn_repeats
    res: dict[str, Any] = {"n": n, "boot": b, "fairlearn_replicates": fb, "repeats": r,
                           "fairlearn_repeats": fr}
    plan = [("audit_point", "audit", 0, None), ("audit_boot", "audit", b, None),
            ("audit_binned", "audit", b, args.bins), ("engine", "engine", b, None),
            ("engine_binned", "engine", b, args.bins), ("points", "points", 0, None),
            ("delong", "delong", 0, None), ("delong_rows", "delong_rows", 0, None),
            ("naive", "naive", 0, None), ("fairlearn_point", "fairlearn", 0, None),
            ("fairlearn_boot", "fairlearn", fb, None)]
    for key, case, boot, bins in plan:
        if key in skip:
            continue
        res[key] = measure(case, n, boot, fr if case == "fairlearn" else r, bins)
        print(key, res[key], file=sys.stderr, flush=True)
    ext: dict[str, float] = {}
    for key in ("audit_boot", "audit_binned"):
        if key in res and "audit_point" in res:
            per = (res[key]["seconds"] - res["audit_point"]["seconds"]) / b
            ext[f"{key}_per_replicate_s"] = per
            ext[f"{key}_B1000_s"] = res["audit_point"]["seconds"] + B_TARGET * per
    if "audit_boot_B1000_s" in ext:
        ext["ecgaudit_B1000_s"] = ext["audit_boot_B1000_s"]
    if "fairlearn_boot" in res:
        per = (res["fairlearn_boot"]["seconds"] - res["fairlearn_point"]["seconds"]) / fb
        ext["fairlearn_per_replicate_s"] = per
        ext["fairlearn_B1000_s"] = res["fairlearn_point"]["seconds"] + B_TARGET * per
    if "naive" in res:
        ext["naive_B1000_s"] = res["naive"]["seconds"] * (B_TARGET + 1)
    for mine in ("audit_boot", "audit_binned"):
        if f"{mine}_B1000_s" not in ext:
            continue
        for other in ("fairlearn_B1000_s", "naive_B1000_s"):
            if other in ext:
                key = f"{mine}_speedup_vs_{other.removesuffix('_B1000_s')}"
                ext[key] = ext[other] / ext[f"{mine}_B1000_s"]
    res["extrapolated"] = ext
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
