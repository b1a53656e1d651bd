"""Compare a candidate model with a baseline, per task x group x metric.

Two modes, and the table says which one produced every row (``ci_method``):

* **paired** (:func:`compare_predictions`): both models scored the same ECGs. AUROC changes
  use the paired DeLong test; threshold rates, Brier score and O/E use a paired bootstrap
  (both models' statistics from the same resampled rows, clustered by patient when the
  config names a patient column, stratified by group). Needs the row-level predictions.
* **unpaired** (:func:`compare_results`): only the two ``results.json`` files. The change
  interval is ``delta +/- z * sqrt(se_b^2 + se_c^2)`` with each standard error read back from
  that result's interval. When the same ECGs were scored this ignores their positive
  correlation and is conservative (too wide), never anti-conservative.

This module orchestrates (validate, align, cohort, thresholds, suppression plan); the
statistics are in :mod:`ecgaudit.metrics._paired`, the table type in
:mod:`ecgaudit.policy._comparison`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import build_cohort
from ecgaudit.config import AuditConfig
from ecgaudit.errors import InputError
from ecgaudit.io import InputTable
from ecgaudit.metrics import (
    PAIRED_METRICS,
    normal_quantile,
    paired_confusion_rows,
    paired_rng,
    threshold_from_spec,
    unpaired_change_interval,
)
from ecgaudit.metrics._paired import paired_group_tasks
from ecgaudit.pipeline._progress import ProgressCallback
from ecgaudit.policy import COMPARISON_COLUMNS, Comparison
from ecgaudit.policy._judge import UNJUDGEABLE_STATUSES
from ecgaudit.privacy import (
    REASON_COMPLEMENTARY,
    REASON_EVENTS,
    is_small_cell,
    plan_suppression,
)
from ecgaudit.result import AuditResult, config_from_manifest
from ecgaudit.schema import RATE_METRICS
from ecgaudit.validate import prepare

__all__ = [
    "COMPARISON_COLUMNS",
    "PAIRED_METRICS",
    "Comparison",
    "compare_predictions",
    "compare_results",
    "config_from_result",
    "merge_comparisons",
]

METHOD_UNPAIRED = "unpaired normal approximation from both results' CIs"
METHOD_BOOT = "paired bootstrap percentile (B={b}{cluster})"
MSG_NOT_SAME_ECGS = (
    "baseline and candidate predictions are not the same ECGs: {detail}. A paired comparison "
    "needs both models scored on the same rows (same ids and labels); otherwise compare the "
    "two results.json files (unpaired)"
)
MSG_NO_CONFIG = (
    "the candidate results.json holds no audit config in its manifest; pass --config"
)
MSG_NEED_ID = "a paired comparison needs `id_column` in the audit config to match the rows"


def compare_results(baseline: AuditResult, candidate: AuditResult,
                    level: float = 0.95) -> Comparison:
    """Compare two saved results without row-level data (unpaired).

    Parameters
    ----------
    baseline, candidate : AuditResult
        The two audits (same tasks and groups).
    level : float
        Confidence level of the change intervals (and of the input intervals).

    Returns
    -------
    Comparison
        A row for every task x attribute x group x metric present in either result; a
        row present in only one is ``insufficient`` with that reason.
    """
    keys = _keys(baseline.metrics, candidate.metrics)
    b = baseline.metrics.loc[:, [*keys, "estimate", "ci_low", "ci_high", "n", "status", "reason"]]
    c = candidate.metrics.loc[:, [*keys, "estimate", "ci_low", "ci_high", "n", "status",
                                  "reason"]]
    m = b.merge(c, on=keys, how="outer", suffixes=("_b", "_c"), indicator=True, sort=False)
    z = normal_quantile(level)
    rows = []
    for r in m.to_dict("records"):
        est_b, est_c = _f(r["estimate_b"]), _f(r["estimate_c"])
        row = {k: r[k] for k in keys}
        row.update(baseline=est_b, candidate=est_c, change=math.nan, change_ci_low=math.nan,
                   change_ci_high=math.nan, ci_method=METHOD_UNPAIRED,
                   n=r["n_c"] if _f(r["n_c"]) == _f(r["n_c"]) else r["n_b"],
                   status="ok", reason="")
        if r["_merge"] != "both":
            side = "baseline" if r["_merge"] == "right_only" else "candidate"
            row.update(status="insufficient", reason=f"group absent from the {side} result")
            rows.append(row)
            continue
        bad = [s for s in (r["status_b"], r["status_c"]) if s in UNJUDGEABLE_STATUSES]
        if bad:
            why = r["reason_c"] if r["status_c"] in UNJUDGEABLE_STATUSES else r["reason_b"]
            row.update(status=bad[0], reason=str(why or ""), baseline=math.nan,
                       candidate=math.nan)
            rows.append(row)
            continue
        row["change"] = est_c - est_b
        limits = unpaired_change_interval(row["change"], (_f(r["ci_low_b"]), _f(r["ci_high_b"])),
                                          (_f(r["ci_low_c"]), _f(r["ci_high_c"])), z)
        if limits is not None:
            row.update(change_ci_low=limits[0], change_ci_high=limits[1])
        else:
            row["reason"] = "no interval in one of the results"
        if "unstable" in (r["status_b"], r["status_c"]):
            row["status"] = "unstable"
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(dict.fromkeys([*COMPARISON_COLUMNS[:4], *keys,
                                                           *COMPARISON_COLUMNS])))
    table["n"] = pd.to_numeric(table["n"], errors="coerce").astype("Int64")
    note = ("unpaired: change intervals combine the two results' intervals as if the samples "
            "were independent; for the same ECGs this is conservative. Pass the prediction "
            "files for a paired comparison.")
    return Comparison(table=table, method="unpaired", notes=(note,))


def _keys(*tables: pd.DataFrame) -> list[str]:
    """Row keys; survival tables (issue 15) add ``horizon`` (metrics at several horizons)."""
    keys = ["task", "attribute", "group", "metric"]
    if all("horizon" in t and t["horizon"].notna().any() for t in tables):
        keys.append("horizon")
    return keys


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def compare_predictions(baseline: pd.DataFrame, candidate: pd.DataFrame,
                        config: AuditConfig, *, metadata: pd.DataFrame | None = None,
                        n_boot: int = 1000, seed: int | None = None,
                        progress: ProgressCallback | None = None) -> Comparison:
    """Compare two models scored on the same ECGs (paired), per task x group.

    Parameters
    ----------
    baseline, candidate : pandas.DataFrame
        Predictions of the two models, both with the columns ``config`` names (labels,
        scores, id, and demographics unless ``metadata`` is given).
    config : AuditConfig
        The audit config (tasks, attributes, thresholds, id and patient columns). Each
        model's threshold is derived by the config's rule on its own scores.
    metadata : pandas.DataFrame, optional
        Demographics joined to both on ``config.id_column``.
    n_boot : int
        Bootstrap replicates for the non-AUROC metrics.
    seed : int, optional
        Random seed (default: ``config.seed``).
    progress : callable, optional
        ``progress(step, index, total)`` before each group's paired bootstrap (groups are
        numbered, never named: names come from the data), ``progress("done", n, n)`` at the
        end.

    Returns
    -------
    Comparison
        Rows for :data:`PAIRED_METRICS`; groups below ``config.min_cell_size`` are
        ``suppressed``.

    Raises
    ------
    InputError
        If the two tables are not the same ECGs with the same labels, or no id column.
    """
    fb, fc = _paired_frames(baseline, candidate, config, metadata)
    if any(t.kind == "survival" for t in config.tasks):  # issue 15: pipeline/_survcompare.py
        from ecgaudit.pipeline._survcompare import compare_survival
        return Comparison(compare_survival(fb, fc, config, n_boot=n_boot, seed=config.seed
                                           if seed is None else seed), "paired",
                          (f"paired: the same {len(fb)} patients scored by both models; "
                           f"survival metrics by paired bootstrap (B={n_boot})",))
    cohort = build_cohort(fb, config)
    units = _resampling_units(fb, config)
    rng = paired_rng(config.seed if seed is None else seed)
    cluster = ", clustered by patient" if config.patient_column else ""
    boot_method = METHOD_BOOT.format(b=n_boot, cluster=cluster)
    k = config.min_cell_size
    unit_of: dict[tuple[str, str], int] = {}
    per_task = []
    for task in config.tasks:
        y = fb[f"y:{task.name}"].to_numpy()
        pb, pc = fb[f"p:{task.name}"].to_numpy(), fc[f"p:{task.name}"].to_numpy()
        spec = config.threshold_for(task.name)
        tb, tc = (threshold_from_spec(y, p, spec, fb)[0] for p in (pb, pc))
        per_task.append((task.name, y, pb, pc, tb, tc))
    task_rows: list[list[dict[str, Any]]] = [[] for _ in per_task]
    task_counts: list[list[dict[str, Any]]] = [[] for _ in per_task]
    n_groups = sum(len(g.groups) for g in cohort.groupings)
    done = 0
    for g in cohort.groupings:               # the tasks of a group share its bootstrap draws
        for i, name in enumerate(g.groups):
            done += 1
            if progress is not None:
                progress(f"paired bootstrap (B={n_boot}): group {done} of {n_groups}", done,
                         n_groups)
            idx = np.flatnonzero(g.codes == i)
            n_units = np.unique(units[idx]).size
            unit_of[(g.attribute, name)] = int(n_units)
            bases = []
            for t, (task_name, y, pb, pc, tb, tc) in enumerate(per_task):
                task_counts[t] += paired_confusion_rows(task_name, g.attribute, name, y[idx],
                                                        (pb[idx] >= tb, pc[idx] >= tc))
                bases.append({"task": task_name, "attribute": g.attribute, "group": name,
                              "n": int(idx.size)})
            if is_small_cell(n_units, k):
                for t, base in enumerate(bases):
                    task_rows[t] += _suppressed_rows(base, k)
                continue
            results = paired_group_tasks(
                [(y[idx], pb[idx], pc[idx], tb, tc) for _, y, pb, pc, tb, tc in per_task],
                units[idx], n_boot, config.ci_level, rng, config.bootstrap_max_degenerate)
            for t, (base, res) in enumerate(zip(bases, results)):
                task_rows[t] += _group_rows(base, res, boot_method)
    if progress is not None:
        progress("done", n_groups, n_groups)
    rows = [r for part in task_rows for r in part]
    counts = [r for part in task_counts for r in part]
    table = pd.DataFrame(rows).reindex(columns=list(COMPARISON_COLUMNS))
    table["n"] = table["n"].astype("Int64")
    table = _withhold(table, pd.DataFrame(counts), unit_of, k)
    note = (f"paired: the same {len(fb)} ECGs scored by both models; AUROC by paired DeLong, "
            f"other metrics by paired bootstrap (B={n_boot}{cluster}), thresholds derived per "
            "model by the config's rule")
    return Comparison(table=table, method="paired", notes=(note,))


def _paired_frames(baseline: pd.DataFrame, candidate: pd.DataFrame, config: AuditConfig,
                   metadata: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate both tables and align the candidate's rows to the baseline's ids.

    Raises
    ------
    InputError
        If there is no id column, or the two tables are not the same ECGs with the same labels.
    """
    if not config.id_column:
        raise InputError(MSG_NEED_ID)
    meta = InputTable(metadata, "metadata", "") if metadata is not None else None
    fb = prepare(InputTable(baseline.reset_index(drop=True), "baseline", ""), config, meta).frame
    fc = prepare(InputTable(candidate.reset_index(drop=True), "candidate", ""), config,
                 meta).frame
    idc = config.id_column
    ids_b, ids_c = fb[idc].astype(str), fc[idc].astype(str)
    if len(fb) != len(fc) or set(ids_b) != set(ids_c):
        only_b = len(set(ids_b) - set(ids_c))
        only_c = len(set(ids_c) - set(ids_b))
        raise InputError(MSG_NOT_SAME_ECGS.format(
            detail=f"{only_b} ids only in the baseline, {only_c} only in the candidate"))
    fc = fc.set_index(ids_c).loc[ids_b.to_numpy()].reset_index(drop=True)
    if any(t.kind == "survival" for t in config.tasks):  # times/events: _survcompare checks
        return fb, fc
    for task in config.tasks:
        differ = np.flatnonzero(fb[f"y:{task.name}"].to_numpy() != fc[f"y:{task.name}"].to_numpy())
        if differ.size:
            raise InputError(MSG_NOT_SAME_ECGS.format(
                detail=f"task '{task.name}' labels differ for {differ.size} ids, e.g. "
                       f"{', '.join(ids_b.iloc[differ[:3]])}"))
    return fb, fc


def _resampling_units(frame: pd.DataFrame, config: AuditConfig) -> np.ndarray:
    """Bootstrap unit of every row: patient codes, or one unit per row without a patient column."""
    if config.patient_column:
        _, units = np.unique(frame[config.patient_column].astype(str).to_numpy(),
                             return_inverse=True)
        return units
    return np.arange(len(frame))


def _suppressed_rows(base: dict[str, Any], k: int) -> list[dict[str, Any]]:
    """Rows of a group below the minimum cell size: no numbers, not even ``n``."""
    return [{**base, "n": None, "metric": m, "status": "suppressed",
             "reason": f"fewer than {k} patients"} for m in PAIRED_METRICS]


def _group_rows(base: dict[str, Any], res: dict[str, dict[str, Any]],
                boot_method: str) -> list[dict[str, Any]]:
    """Comparison rows of one group from :func:`ecgaudit.metrics.paired_group`."""
    rows = []
    for m in PAIRED_METRICS:
        r = res[m]
        rows.append({**base, "metric": m, "ci_method": r.get("ci_method", boot_method),
                     "status": r.get("status", "ok"), "reason": r.get("reason", ""),
                     **{k: r[k] for k in ("baseline", "candidate", "change",
                                          "change_ci_low", "change_ci_high") if k in r}})
    return rows


def _withhold(table: pd.DataFrame, counts: pd.DataFrame, unit_of: dict[tuple[str, str], int],
              k: int) -> pd.DataFrame:
    """Apply the audit's suppression plan (both models') to a paired comparison table.

    A group withheld in either model's plan loses every number (also ``n``); threshold
    rates are withheld where either model's confusion table has a count of 1..k-1 (or a
    complement of one), exactly as in the audits of the two models.
    """
    plans = [plan_suppression(counts[counts["model"] == m], unit_of, k)
             for m in ("baseline", "candidate")]
    out = table.copy()
    keys = list(zip(out["task"], out["attribute"], out["group"], out["metric"]))
    whole = np.array([any(p.group_hidden(a, g) for p in plans) for _, a, g, _ in keys])
    rate = np.array([m in RATE_METRICS and any(p.rates_hidden(t, a, g) for p in plans)
                     for t, a, g, m in keys])
    hide = (whole | rate) & (out["status"] != "suppressed").to_numpy()
    values = ["baseline", "candidate", "change", "change_ci_low", "change_ci_high"]
    out.loc[hide, values] = np.nan
    out.loc[hide, "status"] = "suppressed"
    out.loc[hide, "ci_method"] = "none"
    out.loc[hide & whole, "reason"] = REASON_COMPLEMENTARY
    out.loc[hide & ~whole, "reason"] = REASON_EVENTS.format(k1=k - 1)
    out.loc[hide & whole, "n"] = pd.NA
    return out


def config_from_result(result: AuditResult) -> AuditConfig:
    """Return the resolved audit config a result was computed with (``result.config``).

    Parameters
    ----------
    result : AuditResult
        A result written by ``ecgaudit audit``.

    Returns
    -------
    AuditConfig

    Raises
    ------
    InputError
        If the manifest holds no config.
    ConfigError
        If the manifest's config does not parse.
    """
    if result.config is not None:
        return result.config
    cfg = config_from_manifest(result.manifest, result.extras)  # raises a ConfigError
    if cfg is None:
        raise InputError(MSG_NO_CONFIG)
    return cfg


def merge_comparisons(paired: Comparison, unpaired: Comparison) -> Comparison:
    """Use paired rows where available and unpaired rows for the other metrics.

    Parameters
    ----------
    paired, unpaired : Comparison
        From :func:`compare_predictions` and :func:`compare_results`.

    Returns
    -------
    Comparison
        ``method="mixed"``; each row's ``ci_method`` says how it was computed.
    """
    keys = _keys(paired.table, unpaired.table)
    def tuples(t: pd.DataFrame) -> list[tuple]:  # NaN horizons compare equal
        return [tuple(r) for r in t.loc[:, keys].astype(object).where(
            t.loc[:, keys].notna(), None).to_numpy().tolist()]
    have = set(tuples(paired.table))
    extra = unpaired.table.loc[[r not in have for r in tuples(unpaired.table)]]
    if not len(extra):
        return paired
    table = pd.concat([paired.table, extra], ignore_index=True)
    table["n"] = pd.to_numeric(table["n"], errors="coerce").astype("Int64")
    missing = sorted(set(extra["metric"]))
    note = (f"metrics without a paired method ({', '.join(missing)}) are compared unpaired "
            "from the two results' intervals (conservative for the same ECGs)")
    return Comparison(table=table, method="mixed", notes=(*paired.notes, note))
