"""Per-group extras saved in ``results.json``: curves, calibration suite, ranking, power.

Reliability curves, the calibration suite (ICI, E50, E90, Emax), ranking-fairness metrics
(BPSN, BNSP, xAUC) and the minimum detectable difference vs the reference.

Only groups that pass small-cell suppression (at least ``min_cell_size`` patients) appear.
Curves and the calibration suite cover the overall cohort and single attributes; ranking
metrics and power cover every grouping with a reference group.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import Cohort
from ecgaudit.config import AuditConfig
from ecgaudit.metrics import (
    BootGrouping,
    auroc,
    bnsp_auc,
    bpsn_auc,
    calibration_suite,
    confusion_counts,
    min_detectable_auroc_difference,
    min_detectable_rate_difference,
    ranking_intervals,
    reliability_curve,
    xauc,
)

#: Groups smaller than this get no reliability curve (too few rows for 10 bins).
MIN_CURVE_ROWS = 30


def _curve(y: np.ndarray, p: np.ndarray, bins: int, level: float) -> dict[str, Any]:
    c = reliability_curve(y, p, bins, level=level)
    return {
        "bins": [{"p_mean": m, "y_mean": o, "y_low": lo, "y_high": hi, "n": int(n)}
                 for m, o, lo, hi, n in zip(c["mean_predicted"], c["observed"],
                                            c["observed_ci_low"], c["observed_ci_high"],
                                            c["n"])],
        "smooth": {"p": c["smooth_p"], "y": c["smooth_observed"]},
    }


def _ranking_points(task: str, y: np.ndarray, p: np.ndarray, g: BootGrouping
                    ) -> list[dict[str, Any]]:
    rows = []
    ref = g.reference
    for i, name in enumerate(g.groups):
        in_g = g.codes == i
        values = {"bpsn_auc": bpsn_auc(y, p, in_g), "bnsp_auc": bnsp_auc(y, p, in_g)}
        if ref is not None and i != ref:
            in_r = g.codes == ref
            values["xauc_group_vs_ref"] = xauc(y, p, in_g, in_r)
            values["xauc_ref_vs_group"] = xauc(y, p, in_r, in_g)
        for metric, est in values.items():
            rows.append({"task": task, "attribute": g.attribute, "group": name,
                         "metric": metric, "estimate": est, "ci_low": math.nan,
                         "ci_high": math.nan, "ci_method": "none"})
    return rows


def build_extras(frame: pd.DataFrame, cohort: Cohort, config: AuditConfig,
                 thresholds: dict[str, dict[str, Any]], units: dict[str, np.ndarray],
                 patients: np.ndarray | None) -> dict[str, Any]:
    """Compute curves, calibration suite, ranking metrics and power for the result.

    Parameters
    ----------
    frame : pandas.DataFrame
        Prepared audit table.
    cohort : Cohort
        Groupings.
    config : AuditConfig
        Settings (level, bins, bootstrap, seed, small-cell size).
    thresholds : dict
        Frozen thresholds per task.
    units : dict
        Patients (or ECGs) per group, by attribute.
    patients : ndarray, optional
        Patient index per row.

    Returns
    -------
    dict
        ``curves``, ``calibration_suite``, ``ranking`` and ``power`` entries.
    """
    k = config.min_cell_size
    level = config.ci_level
    curves: dict[str, Any] = {}
    suite: list[dict[str, Any]] = []
    ranking: list[dict[str, Any]] = []
    power: list[dict[str, Any]] = []
    groupings = [BootGrouping(g.attribute, g.codes, g.groups, g.reference)
                 for g in cohort.groupings]
    single = [g for g in cohort.groupings if len(g.components) <= 1]
    for task in config.tasks:
        y = frame[f"y:{task.name}"].to_numpy()
        p = frame[f"p:{task.name}"].to_numpy(dtype=float)
        t = thresholds[task.name]["value"]
        curves[task.name] = {}
        for g in single:
            panel = {}
            for i, name in enumerate(g.groups):
                mask = g.codes == i
                if units[g.attribute][i] < k:
                    continue
                yi, pi = y[mask], p[mask]
                if mask.sum() >= MIN_CURVE_ROWS:
                    panel[name] = _curve(yi, pi, config.calibration.ece_bins, level)
                suite.append({"task": task.name, "attribute": g.attribute, "group": name,
                              **calibration_suite(yi, pi)})
            if panel:
                curves[task.name][g.attribute] = panel
        ranked = [bg for bg in groupings if bg.reference is not None]
        if config.bootstrap > 0:
            table = ranking_intervals(task.name, y.astype(np.int8), p, ranked,
                                      n_boot=config.bootstrap, seed=config.seed, level=level,
                                      patient=patients,
                                      max_degenerate=config.bootstrap_max_degenerate,
                                      strata_groupings=groupings)
            rows = table.drop(columns=["degenerate_share"], errors="ignore").to_dict("records")
        else:
            rows = [r for bg in ranked for r in _ranking_points(task.name, y, p, bg)]
        unit_of = {(g.attribute, n): units[g.attribute][i]
                   for g in cohort.groupings for i, n in enumerate(g.groups)}
        ranking += [r for r in rows if unit_of[(r["attribute"], r["group"])] >= k]
        for g in cohort.groupings:
            if g.reference is None or units[g.attribute][g.reference] < k:
                continue
            r_mask = g.codes == g.reference
            r_pos, r_neg = int(y[r_mask].sum()), int((~y[r_mask].astype(bool)).sum())
            r_auc = auroc(y[r_mask], p[r_mask])
            r_sens = confusion_counts(y[r_mask], p[r_mask], t).rate("sensitivity")
            for i, name in enumerate(g.groups):
                if i == g.reference or units[g.attribute][i] < k:
                    continue
                m = g.codes == i
                n_pos, n_neg = int(y[m].sum()), int(m.sum() - y[m].sum())
                g_auc = auroc(y[m], p[m])
                num, den = confusion_counts(y[m], p[m], t).rate("sensitivity")
                mdd_auc = (min_detectable_auroc_difference(n_pos, n_neg, g_auc, r_pos, r_neg,
                                                           r_auc)
                           if n_pos and n_neg and r_pos and r_neg else math.nan)
                mdd_sens = (min_detectable_rate_difference(den, num / den, r_sens[1],
                                                           r_sens[0] / r_sens[1])
                            if den and r_sens[1] else math.nan)
                power.append({"task": task.name, "attribute": g.attribute, "group": name,
                              "reference": g.groups[g.reference],
                              "min_detectable_auroc_difference": mdd_auc,
                              "min_detectable_sensitivity_difference": mdd_sens})
    return {"curves": curves, "calibration_suite": suite, "ranking": ranking,
            "power": power}
