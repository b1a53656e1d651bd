"""Add bootstrap intervals where no closed form exists, when ``bootstrap: B`` is set.

Rates, AUROC and O/E keep their closed-form score intervals (Wilson, Newcombe's AUROC score
interval, exact Poisson; MOVER for their differences and ratios, with inverted tests) in
every mode: in small groups they cover better than percentile bootstrap intervals
(``docs/small-groups.md``), and a design effect makes them patient-clustered. Every other
metric (AUPRC, Brier, ECE, calibration intercept/slope) and its disparities get a bootstrap
interval from the same replicates (stratified by the finest intersection cell, clustered by
patient when a patient column is given), and disparity rows their p-value from the same
replicates (``test="bootstrap"``; the p-value inverts the interval, so the two agree).

Fallback: where the bootstrap gives no usable interval (replicates collapsed to one value,
too many degenerate replicates, BCa undefined) a row takes a closed-form interval where one
is defined for that case (AUPRC: Wilson on the positives) with ``ci_method`` ending in
``-fallback`` and the reason saying why; otherwise it keeps no interval. Downstream (the
gate) treats ``-fallback`` intervals as weak evidence.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ecgaudit.config import AuditConfig
from ecgaudit.metrics import MetricSession

_KEY = ["task", "attribute", "group", "metric"]
_DKEY = ["task", "attribute", "group", "reference", "metric"]
FALLBACK = "-fallback"
#: Above this many rows x tasks, ``bootstrap_bins: auto`` switches the replicates to binned
#: mode (exact B = 1000 replicates would take about 30 s or more on 2 cores).
AUTO_BIN_ROW_TASKS = 200_000
#: Bins chosen by ``bootstrap_bins: auto``.
AUTO_BINS = 4096
#: ``choose_bins`` without binary tasks (continuous replicates are exact and fast).
NO_BINARY = "no binary task: continuous replicates are always exact"
FALLBACK_NOTE = "closed-form {method} interval used instead"
NO_CLOSED_FORM = "no closed-form interval for this metric"


def choose_bins(config: AuditConfig, n_rows: int, n_tasks: int) -> dict[str, object]:
    """Resolve ``bootstrap_bins`` (``auto`` / ``exact`` / a count) for this input.

    Returns
    -------
    dict
        ``{"bins": int | None, "reason": str}`` (recorded in the manifest).
    """
    setting = config.bootstrap_bins
    if config.bootstrap <= 0:
        return {"bins": None, "reason": "bootstrap off (closed-form intervals only)"}
    if n_tasks == 0:
        return {"bins": None, "reason": NO_BINARY}
    if isinstance(setting, int) and not isinstance(setting, bool):
        return {"bins": setting, "reason": "bootstrap_bins set in the config"}
    if setting == "exact":
        return {"bins": None, "reason": "bootstrap_bins: exact"}
    size = n_rows * n_tasks
    if size > AUTO_BIN_ROW_TASKS:
        return {"bins": AUTO_BINS,
                "reason": f"auto: {n_rows} rows x {n_tasks} tasks > {AUTO_BIN_ROW_TASKS}"}
    return {"bins": None,
            "reason": f"auto: {n_rows} rows x {n_tasks} tasks <= {AUTO_BIN_ROW_TASKS} (exact)"}


def bootstrap_step(config: AuditConfig, n_rows: int, n_tasks: int) -> str:
    """Describe the bootstrap step for the progress line: B and the mode chosen.

    Returns
    -------
    str
        E.g. ``"bootstrap: 1000 replicates (binned, 4096 bins; auto: 1000000 rows x 5 tasks
        > 200000)"``.
    """
    chosen = choose_bins(config, n_rows, n_tasks)
    mode = f"binned, {chosen['bins']} bins" if chosen["bins"] else "exact"
    return f"bootstrap: {config.bootstrap} replicates ({mode}; {chosen['reason']})"


def _join(*parts: object) -> str:
    return "; ".join(str(p) for p in parts if isinstance(p, str) and p)


def _fallbacks(session: MetricSession) -> dict[tuple[str, str, str, str], tuple]:
    """Closed-form intervals kept only for collapsed bootstraps (e.g. AUPRC), by row key."""
    out: dict[tuple[str, str, str, str], tuple] = {}
    points = session.points
    if points is None:
        return out
    for task, per_task in zip(session.tasks, points.stats):
        for g, stats in zip(session.groupings, per_task):
            for name, s in zip(g.groups, stats):
                for metric, value in s.fallback.items():
                    out[(task.name, g.attribute, name, metric)] = value
    return out


def _metric_rows(metrics: pd.DataFrame, boot: pd.DataFrame,
                 extra: dict[tuple[str, str, str, str], tuple]) -> pd.DataFrame:
    b = boot.set_index(_KEY).reindex(pd.MultiIndex.from_frame(metrics[_KEY]))
    out = metrics.copy()
    cols = {c: list(out[c]) for c in ("ci_low", "ci_high", "ci_method", "reason")}
    lo, hi = b["ci_low"].to_numpy(), b["ci_high"].to_numpy()
    methods, reasons = b["ci_method"].to_numpy(), b["reason"].to_numpy()
    for i, row in enumerate(metrics.itertuples(index=False)):
        if row.status not in ("ok", "unstable") or not isinstance(methods[i], str):
            continue
        if row.ci_method != "none" and math.isfinite(row.ci_low):
            continue  # a closed-form score interval (rates, AUROC, O/E) is kept
        if math.isfinite(lo[i]) and math.isfinite(hi[i]):
            values = (lo[i], hi[i], methods[i], _join(row.reason, reasons[i]))
            for col, v in zip(cols, values):
                cols[col][i] = v
            continue
        closed = (row.ci_low, row.ci_high, row.ci_method)
        if not (row.ci_method != "none" and math.isfinite(row.ci_low)):
            closed = extra.get((row.task, row.attribute, row.group, row.metric), closed)
        if closed[2] != "none" and math.isfinite(closed[0]):
            values = (closed[0], closed[1], closed[2] + FALLBACK,
                      _join(row.reason, reasons[i], FALLBACK_NOTE.format(method=closed[2])))
        else:
            values = (np.nan, np.nan, "none", _join(row.reason, reasons[i], NO_CLOSED_FORM))
        for col, v in zip(cols, values):
            cols[col][i] = v
    for col, v in cols.items():
        out[col] = v
    return out


def _disparity_rows(disparities: pd.DataFrame, boot: pd.DataFrame) -> pd.DataFrame:
    b = boot.set_index(_DKEY).reindex(pd.MultiIndex.from_frame(disparities[_DKEY]))
    out = disparities.copy()
    cols = {c: list(out[c]) for c in ("difference_ci_low", "difference_ci_high",
                                      "ratio_ci_low", "ratio_ci_high", "ci_method", "test",
                                      "p_value", "reason")}
    bv = {c: b[c].to_numpy() for c in ("difference_ci_low", "difference_ci_high",
                                       "ratio_ci_low", "ratio_ci_high", "ci_method",
                                       "p_value", "reason")}
    for i, row in enumerate(disparities.itertuples(index=False)):
        if row.status not in ("ok", "unstable") or not isinstance(bv["ci_method"][i], str):
            continue
        if row.ci_method != "none" and math.isfinite(row.difference_ci_low):
            continue  # closed-form MOVER interval and its inverted test are kept
        boot_method, why = bv["ci_method"][i], bv["reason"][i]
        if math.isfinite(bv["difference_ci_low"][i]):
            update = {"difference_ci_low": bv["difference_ci_low"][i],
                      "difference_ci_high": bv["difference_ci_high"][i],
                      "p_value": bv["p_value"][i], "test": "bootstrap",
                      "ci_method": boot_method, "reason": _join(row.reason, why)}
            if math.isfinite(bv["ratio_ci_low"][i]) or not math.isfinite(row.ratio):
                update.update(ratio_ci_low=bv["ratio_ci_low"][i],
                              ratio_ci_high=bv["ratio_ci_high"][i])
            elif math.isfinite(row.ratio_ci_low):  # closed-form ratio kept
                ratio_method = str(row.ci_method).split("/")[-1]
                update.update(ci_method=f"{boot_method}/{ratio_method}{FALLBACK}",
                              reason=_join(row.reason, why,
                                           FALLBACK_NOTE.format(method=ratio_method)
                                           + " for the ratio"))
            else:
                update.update(ratio_ci_low=np.nan, ratio_ci_high=np.nan)
        elif row.ci_method != "none" and math.isfinite(row.difference_ci_low):
            update = {"ci_method": row.ci_method + FALLBACK,
                      "reason": _join(row.reason, why,
                                      FALLBACK_NOTE.format(method=row.ci_method))}
        else:
            update = {"difference_ci_low": np.nan, "difference_ci_high": np.nan,
                      "ratio_ci_low": np.nan, "ratio_ci_high": np.nan, "ci_method": "none",
                      "test": "none", "p_value": np.nan,
                      "reason": _join(row.reason, why, NO_CLOSED_FORM)}
        for col, v in update.items():
            cols[col][i] = v
    for col, v in cols.items():
        out[col] = v
    return out


def apply_bootstrap(metrics: pd.DataFrame, disparities: pd.DataFrame, session: MetricSession,
                    config: AuditConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fill bootstrap intervals into the (unsuppressed) metric and disparity tables.

    Parameters
    ----------
    metrics, disparities : pandas.DataFrame
        Tables with closed-form intervals.
    session : MetricSession
        The audit's engine set-up (tasks, groupings, patients, seed, bins, point estimates).
    config : AuditConfig
        ``bootstrap`` (B), ``bootstrap_method``, ``bootstrap_max_degenerate``, ``ci_level``.

    Returns
    -------
    tuple of pandas.DataFrame
        Updated metrics and disparities, and the ranking metrics with their intervals.
    """
    boot = session.bootstrap(config.bootstrap, level=config.ci_level,
                             method=config.bootstrap_method,
                             max_degenerate=config.bootstrap_max_degenerate)
    metrics = _metric_rows(metrics, boot.metrics, _fallbacks(session))
    disparities = _disparity_rows(disparities, boot.disparities)
    ranking = boot.ranking.drop(columns=["degenerate_share"])
    return metrics, disparities, ranking
