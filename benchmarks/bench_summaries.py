"""Benchmark: federated (site summaries) vs pooled audit on the real PTB-XL predictions.

The xresnet1d101 predictions of ``examples/ptbxl`` (2,203 ECGs of the PTB-XL test fold,
six tasks) are split by **recording site** (every site its own summary, the tiny ones
included; the two ECGs without a site form site ``unknown``). The config is
``examples/ptbxl/audit.yaml`` without its ``site`` attribute (the site becomes the per-site
attribute of the pooled audit) and with the thresholds fixed at the values the pooled
row-level audit derives (sensitivity >= 0.90): sites must agree on a threshold before they
summarise.

Measured:

* ``summarize`` per site (time, bytes of the file), without and with B replicates;
* ``audit --from-summaries`` of all sites (time) against the row-level audit of the same
  rows with their scores binned on the same grid (must be equal: counts exactly, every
  float to rounding), and against the exact row-level audit (the binning's effect);
* with ``--replicates B``: the pooled audit with bootstrap intervals from the sites'
  Poisson replicate cells, and the row-level audit with its own patient-clustered bootstrap.

Usage (from the repository root)::

    python benchmarks/bench_summaries.py --repeats 3 \\
        --out benchmarks/results/bench_summaries_ptbxl.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ecgaudit.pipeline import audit
from ecgaudit.pipeline._fromsummaries import audit_summary_files
from ecgaudit.pipeline._summaries import summarize
from ecgaudit.summary import bin_index, grid_edges, write_summary

ROOT = Path(__file__).resolve().parents[1]
X = ROOT / "examples" / "ptbxl"
KEY = ["task", "attribute", "group", "metric"]


def load() -> tuple[pd.DataFrame, dict[str, Any]]:
    ids = {"ecg_id": str, "patient_id": str}
    pred = pd.read_csv(X / "predictions.csv", dtype=ids)
    meta = pd.read_csv(X / "metadata.csv", dtype={**ids, "site": str})
    frame = pred.merge(meta, on="ecg_id", validate="one_to_one")
    cfg = yaml.safe_load((X / "audit.yaml").read_text())
    cfg["attributes"].pop("site")
    cfg["intersections"] = [["age", "sex"]]
    cfg.pop("context", None)
    return frame, cfg


def fixed_thresholds(frame: pd.DataFrame, cfg: dict[str, Any]) -> dict[str, Any]:
    res = audit(frame, {**cfg, "bootstrap": 0})
    values = {t: v["value"] for t, v in res.manifest["thresholds"].items()}
    out = {k: v for k, v in cfg.items() if k != "threshold"}
    out["task_thresholds"] = {t: {"rule": "fixed", "value": v} for t, v in values.items()}
    return out


def binned(frame: pd.DataFrame, cfg: dict[str, Any], bins: int) -> pd.DataFrame:
    out = frame.copy()
    for t in cfg["tasks"]:
        thr = cfg["task_thresholds"][t["name"]]["value"]
        e = grid_edges(bins, thr)
        p = out[t["score"]].to_numpy(dtype=float)
        b = bin_index(p, e)
        mean = np.bincount(b, weights=p, minlength=e.size - 1) / np.maximum(
            np.bincount(b, minlength=e.size - 1), 1)
        out[t["score"]] = mean[b]
    return out


def timed(fn: Any, repeats: int) -> tuple[Any, float, list[float]]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times), times


def compare(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, Any]:
    j = a.merge(b, on=KEY, suffixes=("_s", "_r"))
    out: dict[str, Any] = {"rows": len(a), "rows_matched": len(j),
                           "same_order": bool(a[KEY].equals(b[KEY]))}
    for c in ("n", "n_pos"):
        out[f"{c}_equal"] = bool(j[f"{c}_s"].astype(float).equals(j[f"{c}_r"].astype(float)))
    for c in ("status", "ci_method"):
        out[f"{c}_equal"] = bool((j[f"{c}_s"] == j[f"{c}_r"]).all())
    for c in ("estimate", "ci_low", "ci_high"):
        d = np.abs(j[f"{c}_s"] - j[f"{c}_r"]).to_numpy()
        out[f"{c}_max_abs_diff"] = float(np.nanmax(d)) if np.isfinite(d).any() else 0.0
    return out


def binning_effect(fed: pd.DataFrame, exact: pd.DataFrame) -> dict[str, dict[str, float]]:
    """|binned - exact| per metric: overall group (max over tasks), all groups (median, max)."""
    j = fed.merge(exact, on=KEY, suffixes=("_s", "_e"))
    j = j[(j.status_s == "ok") & (j.status_e == "ok")]
    out = {}
    for m in ("auroc", "auprc", "sensitivity", "specificity", "brier", "ece", "cal_slope"):
        mine = j[j.metric == m]
        d = (mine.estimate_s - mine.estimate_e).abs()
        overall = d[(mine.attribute == "overall").to_numpy()]
        out[m] = {"overall_max": float(overall.max()), "groups_median": float(d.median()),
                  "groups_max": float(d.max()), "groups": len(d)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bins", type=int, default=1024)
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    frame, cfg = load()
    cfg = fixed_thresholds(frame, cfg)
    frame["site"] = frame["site"].fillna("unknown")
    sites = sorted(frame["site"].unique(), key=lambda s: (s == "unknown", float(s)
                                                           if s != "unknown" else 0))
    result: dict[str, Any] = {"n_ecgs": len(frame), "n_patients": frame.patient_id.nunique(),
                              "n_sites": len(sites), "tasks": len(cfg["tasks"]),
                              "bins": args.bins, "replicates": args.replicates,
                              "thresholds": cfg["task_thresholds"]}
    with tempfile.TemporaryDirectory() as tmp:
        per_site = []
        paths, rpaths = [], []
        for s in sites:
            part = frame[frame.site == s].drop(columns="site").reset_index(drop=True)
            row: dict[str, Any] = {"site": s, "ecgs": len(part)}
            for b, label, lst in ((0, "plain", paths), (args.replicates, "replicates", rpaths)):
                summ, t, _ = timed(lambda p=part, b=b, s=s: summarize(
                    p, {**cfg, "bootstrap": b}, site=s, bins=args.bins, replicates=b),
                    args.repeats)
                path = write_summary(summ, Path(tmp) / f"{label}_{s}.summary")
                lst.append(path)
                row.update({f"{label}_seconds": t, f"{label}_bytes": path.stat().st_size,
                            f"{label}_cells": len(summ.cells)})
            per_site.append(row)
        result["sites"] = per_site
        fed, t_fed, ts = timed(lambda: audit_summary_files(paths, {**cfg, "bootstrap": 0}),
                               args.repeats)
        ref_cfg = {**cfg, "bootstrap": 0, "patient_column": None,
                   "attributes": {**cfg["attributes"], "site": {}}}
        ref, t_ref, tr = timed(lambda: audit(binned(frame, cfg, args.bins), ref_cfg),
                               args.repeats)
        exact, t_exact, _ = timed(lambda: audit(frame, ref_cfg), 1)
        result["closed_form"] = {
            "from_summaries_seconds": t_fed, "from_summaries_runs": ts,
            "row_level_binned_seconds": t_ref, "row_level_binned_runs": tr,
            "row_level_exact_seconds": t_exact,
            "vs_row_level_binned": compare(fed.metrics, ref.metrics),
            "disparities_vs_row_level_binned": {
                "rows": len(fed.disparities),
                "equal_keys": bool(fed.disparities.iloc[:, :5].equals(
                    ref.disparities.iloc[:, :5]))},
            "binning_effect_max_abs_vs_exact": binning_effect(fed.metrics, exact.metrics)}
        b = args.replicates
        fedb, t_fedb, _ = timed(lambda: audit_summary_files(rpaths, {**cfg, "bootstrap": b}),
                                args.repeats)
        rowb, t_rowb, _ = timed(lambda: audit(frame, {**cfg, "bootstrap": b,
                                                      "attributes": ref_cfg["attributes"]}), 1)
        boot = fedb.metrics[fedb.metrics.ci_method == "bootstrap-percentile"]
        j = boot.merge(rowb.metrics, on=KEY, suffixes=("_s", "_r"))
        w_s = (j.ci_high_s - j.ci_low_s).to_numpy()
        w_r = (j.ci_high_r - j.ci_low_r).to_numpy()
        ok = np.isfinite(w_s) & np.isfinite(w_r) & (w_r > 0)
        result["bootstrap"] = {
            "from_summaries_seconds": t_fedb, "row_level_exact_clustered_seconds": t_rowb,
            "bootstrap_rows": len(boot),
            "median_width_ratio_summaries_over_row_level": float(np.median(w_s[ok] / w_r[ok])),
            "note": "summaries: Poisson(1) weights hashed from the patient id; row level: "
                    "stratified multinomial patient bootstrap on exact scores"}
    sizes = [r["plain_bytes"] for r in per_site]
    rsizes = [r["replicates_bytes"] for r in per_site]
    result["bytes"] = {"per_site_median": statistics.median(sizes), "per_site_max": max(sizes),
                       "total": sum(sizes), "with_replicates_median": statistics.median(rsizes),
                       "with_replicates_max": max(rsizes), "with_replicates_total": sum(rsizes)}
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
