"""Continuous tasks in an audit: metric and disparity rows, and the derived cut-point tasks.

``binary_part`` gives the config the binary path runs on: the binary tasks plus, for every
cut-point ``c`` of a continuous task, a derived binary task ``<name>>=<c>`` (measured >= c;
predicted >= c flagged, via a rank map of the predicted values with a fixed threshold of
0.5, see :func:`ecgaudit.validate._continuous.cut_scores`). Calibration metrics of derived
tasks are withheld (``insufficient``): their scores are not probabilities, and calibration
of the predicted value is audited by the continuous task's ``slope`` and ``intercept``.

``continuous_rows`` computes the rows of the continuous tasks (closed-form intervals, or
bootstrap intervals from the binary path's draws when ``bootstrap: B`` is set); they join
the metric and disparity tables before small-cell suppression and multiplicity adjustment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import Cohort
from ecgaudit.config import AuditConfig, TaskConfig, ThresholdConfig
from ecgaudit.disparity._contcompare import RATIO_METRICS, continuous_contrasts
from ecgaudit.metrics import PointEstimates
from ecgaudit.metrics._contboot import ContinuousSample, bootstrap_p_value, limits
from ecgaudit.metrics._contcurves import agreement_curves
from ecgaudit.metrics._continuous import (
    CONTINUOUS_METRIC_SPECS,
    MIN_STABLE_N,
    closed_form_intervals,
)
from ecgaudit.metrics._points import RANKING_COLUMNS
from ecgaudit.privacy import too_small_to_draw
from ecgaudit.schema import CONTINUOUS_METRICS, INTERSECTION_SEP
from ecgaudit.validate._continuous import cut_task_name

__all__ = ["REASON_NOT_PROBABILITY", "add_continuous", "binary_part", "continuous_extras",
           "continuous_rows", "no_binary_tasks", "withhold_calibration"]

NAN = float("nan")
CALIBRATION_METRICS = ("brier", "oe_ratio", "cal_intercept", "cal_slope", "ece")
REASON_NOT_PROBABILITY = (
    "derived cut-point task: its score is the predicted value, not a probability; "
    "calibration is audited by the continuous task's slope and intercept"
)
REASON_UNDEFINED = "undefined for this group (too few rows, or constant values)"
REASON_FEW = "fewer than {k} ECGs; normal-theory interval approximate, interpret with caution"
REASON_NO_SPREAD = "no spread in this group: the interval would have zero width"
REASON_DEGENERATE = (
    "bootstrap CI unavailable: {share:.1%} of {n_boot} replicates were degenerate, above the "
    "limit of {limit:.1%} (bootstrap_max_degenerate)"
)


def continuous_tasks(config: AuditConfig) -> list[TaskConfig]:
    """Return the ``kind: continuous`` tasks of ``config``."""
    return [t for t in config.tasks if t.kind == "continuous"]


def derived_tasks(config: AuditConfig) -> list[str]:
    """Return the names of the binary tasks derived from cut-points."""
    return [cut_task_name(t.name, c) for t in continuous_tasks(config) for c in t.cutpoints]


def binary_part(config: AuditConfig) -> AuditConfig:
    """Return the config of the binary path: non-continuous tasks plus derived cut-point tasks.

    Returns ``config`` itself when it has no continuous task.
    """
    cont = continuous_tasks(config)
    if not cont:
        return config
    keep = [t for t in config.tasks if t.kind != "continuous"]
    derived = [TaskConfig(name=cut_task_name(t.name, c), label=t.label, score=t.score)
               for t in cont for c in t.cutpoints]
    fixed = ThresholdConfig(rule="fixed", value=0.5)
    thresholds = {**config.task_thresholds, **{d.name: fixed for d in derived}}
    return config.model_copy(update={"tasks": tuple(keep + derived),
                                     "task_thresholds": thresholds})


def withhold_calibration(table: pd.DataFrame, config: AuditConfig,
                         value_cols: tuple[str, ...]) -> pd.DataFrame:
    """Blank calibration metrics of derived cut-point tasks (status ``insufficient``)."""
    names = derived_tasks(config)
    if not names or not len(table):
        return table
    mask = table["task"].isin(names) & table["metric"].isin(CALIBRATION_METRICS)
    out = table.copy()
    for col in value_cols:
        out.loc[mask, col] = np.nan
    for col in ("ci_method", "test"):
        if col in out:
            out.loc[mask, col] = "none"
    out.loc[mask, "status"] = "insufficient"
    out.loc[mask, "reason"] = REASON_NOT_PROBABILITY
    return out


def _metric_names(task: TaskConfig) -> list[str]:
    return [m for m in CONTINUOUS_METRICS if m != "within_tolerance" or task.tolerance]


def _metric_row(task: str, attribute: str, group: str, metric: str, est: float, lo: float,
                hi: float, method: str, n: float) -> dict[str, Any]:
    status, reason = "ok", ""
    if not np.isfinite(est):
        status, reason, lo, hi, method = "insufficient", REASON_UNDEFINED, NAN, NAN, "none"
    elif not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        reason = REASON_NO_SPREAD if np.isfinite(lo) and hi <= lo else reason
        lo, hi, method = NAN, NAN, "none"
    if status == "ok" and n < MIN_STABLE_N:
        status = "unstable"
        reason = "; ".join(r for r in (reason, REASON_FEW.format(k=MIN_STABLE_N)) if r)
    return {"task": task, "attribute": attribute, "group": group, "metric": metric,
            "estimate": float(est), "ci_low": float(lo), "ci_high": float(hi),
            "ci_method": method, "n": int(n), "n_pos": None, "status": status,
            "reason": reason}


def _boot_method(config: AuditConfig) -> str:
    return f"bootstrap-{config.bootstrap_method}"


def _degenerate(share: float, config: AuditConfig) -> str:
    return REASON_DEGENERATE.format(share=share, n_boot=config.bootstrap,
                                    limit=config.bootstrap_max_degenerate)


def _task_rows(frame: pd.DataFrame, cohort: Cohort, config: AuditConfig, task: TaskConfig,
               patients: np.ndarray | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    groupings = cohort.groupings
    sample = ContinuousSample(frame[f"y:{task.name}"].to_numpy(np.float64),
                              frame[f"p:{task.name}"].to_numpy(np.float64),
                              [g.codes for g in groupings], [len(g.groups) for g in groupings],
                              tolerance=task.tolerance, patient=patients, seed=config.seed,
                              compiled={"auto": None, "compiled": True,
                                        "numpy": False}[config.engine])
    stats = sample.group_stats(sample.cell_stats())
    level, names = config.ci_level, _metric_names(task)
    idx = [CONTINUOUS_METRICS.index(m) for m in names]
    methods = {s.name: s.interval for s in CONTINUOUS_METRIC_SPECS}
    reps = sample.replicates(config.bootstrap) if config.bootstrap > 0 else None
    jack = (sample.jackknife() if reps is not None and config.bootstrap_method == "bca"
            else None)
    metric_rows: list[dict[str, Any]] = []
    disp_rows: list[dict[str, Any]] = []
    for k, g in enumerate(groupings):
        est, lo, hi = closed_form_intervals(stats[k], sample.shift, level)
        share = np.zeros_like(est)
        if reps is not None:
            bl = limits(reps[k], est, level, config.bootstrap_method,
                        None if jack is None else jack[k])
            lo, hi, share = bl.low, bl.high, bl.degenerate
        for i, name in enumerate(g.groups):
            for m, j in zip(names, idx):
                method = _boot_method(config) if reps is not None else methods[m]
                row = _metric_row(task.name, g.attribute, name, m, est[i, j], lo[i, j],
                                  hi[i, j], method, stats[k][i, 0])
                if reps is not None and share[i, j] > config.bootstrap_max_degenerate:
                    row.update(ci_low=NAN, ci_high=NAN, ci_method="none",
                               reason=_degenerate(float(share[i, j]), config))
                metric_rows.append(row)
        if g.reference is None:
            continue
        ref = g.reference
        for i, name in enumerate(g.groups):
            if i == ref:
                continue
            rows = continuous_contrasts(stats[k][i], stats[k][ref], sample.shift, level,
                                        tuple(names))
            if reps is not None:
                _bootstrap_contrasts(rows, reps[k][:, i, :], reps[k][:, ref, :], config)
            for row in rows:
                unstable = min(stats[k][i, 0], stats[k][ref, 0]) < MIN_STABLE_N
                if row["status"] == "ok" and unstable:
                    row.update(status="unstable", reason=REASON_FEW.format(k=MIN_STABLE_N))
                disp_rows.append({"task": task.name, "attribute": g.attribute, "group": name,
                                  "reference": g.groups[ref], **row})
    return metric_rows, disp_rows


def _bootstrap_contrasts(rows: list[dict[str, Any]], rg: np.ndarray, rr: np.ndarray,
                         config: AuditConfig) -> None:
    level = config.ci_level
    for row in rows:
        if row["status"] == "insufficient":
            continue
        j = CONTINUOUS_METRICS.index(row["metric"])
        diff = rg[:, j] - rr[:, j]
        bl = limits(diff[:, None], np.array([row["difference"]]), level, "percentile")
        if bl.degenerate[0] > config.bootstrap_max_degenerate:
            row.update(difference_ci_low=NAN, difference_ci_high=NAN, ratio_ci_low=NAN,
                       ratio_ci_high=NAN, ci_method="none",
                       reason=_degenerate(float(bl.degenerate[0]), config))
            continue
        row.update(difference_ci_low=float(bl.low[0]), difference_ci_high=float(bl.high[0]),
                   ci_method=_boot_method(config).replace("-bca", "-percentile"))
        if row["metric"] in RATIO_METRICS and np.isfinite(row["ratio"]):
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(rr[:, j] > 0, rg[:, j] / rr[:, j], np.nan)
            rl = limits(ratio[:, None], np.array([row["ratio"]]), level, "percentile")
            row.update(ratio_ci_low=float(rl.low[0]), ratio_ci_high=float(rl.high[0]))
        if row["test"] == "none":
            row.update(test="bootstrap", p_value=float(bootstrap_p_value(diff[:, None])[0]))


def continuous_rows(frame: pd.DataFrame, cohort: Cohort, config: AuditConfig,
                    patients: np.ndarray | None
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Metric and disparity rows of every continuous task of ``config``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The prepared table (``y:<task>`` measured, ``p:<task>`` predicted).
    cohort : Cohort
        Groupings with their reference groups.
    config : AuditConfig
        The full audit config.
    patients : ndarray, optional
        Patient index per row (clustered bootstrap).

    Returns
    -------
    tuple of list of dict
        Rows of the metric table (``METRIC_COLUMNS``) and of the disparity table (without
        ``p_holm``/``p_bh``, added with the others).
    """
    metric_rows: list[dict[str, Any]] = []
    disp_rows: list[dict[str, Any]] = []
    for task in continuous_tasks(config):
        m, d = _task_rows(frame, cohort, config, task, patients)
        metric_rows += m
        disp_rows += d
    return metric_rows, disp_rows


def add_continuous(metrics: pd.DataFrame, disparities: pd.DataFrame, frame: pd.DataFrame,
                   cohort: Cohort, config: AuditConfig, patients: np.ndarray | None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Append the continuous tasks' rows; withhold derived tasks' calibration metrics.

    Returns the tables unchanged when ``config`` has no continuous task.
    """
    if not continuous_tasks(config):
        return metrics, disparities
    m_rows, d_rows = continuous_rows(frame, cohort, config, patients)
    metrics = withhold_calibration(metrics, config, ("estimate", "ci_low", "ci_high"))
    disparities = withhold_calibration(disparities, config, (
        "difference", "difference_ci_low", "difference_ci_high", "ratio", "ratio_ci_low",
        "ratio_ci_high", "p_value"))
    new_m = pd.DataFrame(m_rows, columns=list(metrics.columns))
    new_d = pd.DataFrame(d_rows, columns=list(disparities.columns))
    metrics = pd.concat([df for df in (metrics, new_m) if len(df)], ignore_index=True) \
        if len(metrics) or len(new_m) else metrics
    disparities = pd.concat([df for df in (disparities, new_d) if len(df)],
                            ignore_index=True) if len(disparities) or len(new_d) else disparities
    return metrics, disparities


def continuous_extras(frame: pd.DataFrame, cohort: Cohort, config: AuditConfig,
                      units: dict[str, np.ndarray]) -> dict[str, Any]:
    """Binned agreement curves per continuous task and group (``extras["continuous"]``).

    Only the overall cohort and single attributes; only groups with at least
    ``min_cell_size`` patients (the others are suppressed in the tables too).
    """
    tasks = continuous_tasks(config)
    if not tasks:
        return {}
    out: dict[str, Any] = {}
    for task in tasks:
        y = frame[f"y:{task.name}"].to_numpy(np.float64)
        x = frame[f"p:{task.name}"].to_numpy(np.float64)
        by_avg = np.argsort(x + y, kind="stable")  # sorted once; groups keep this order
        by_x = np.argsort(x, kind="stable")
        groups = []
        for g in cohort.groupings:
            if INTERSECTION_SEP in g.attribute:
                continue
            for i, name in enumerate(g.groups):
                if too_small_to_draw(int(units[g.attribute][i]), config.min_cell_size):
                    continue
                rows = g.codes == i
                curves = agreement_curves(y, x, by_avg[rows[by_avg]], by_x[rows[by_x]],
                                          level=config.ci_level)
                if curves is not None:
                    groups.append({"attribute": g.attribute, "group": name, **curves})
        out[task.name] = {"tolerance": task.tolerance, "cutpoints": list(task.cutpoints),
                          "derived_tasks": [cut_task_name(task.name, c) for c in task.cutpoints],
                          "groups": groups}
    return {"continuous": out}


def no_binary_tasks() -> tuple[list[dict[str, Any]], list[dict[str, Any]], None,
                               PointEstimates]:
    """Return what the binary path yields for a config without binary tasks (nothing)."""
    return [], [], None, PointEstimates([], pd.DataFrame(columns=list(RANKING_COLUMNS)))
