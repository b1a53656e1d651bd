"""Apply a :class:`~ecgaudit.privacy._plan.SuppressionPlan` to every exported table.

A withheld row keeps its identifying columns (task, attribute, group, metric) and its
``status``/``reason`` say why; every number derived from the withheld cell is blanked.
The rule and its rationale are documented in ``docs/small-groups.md`` (section Suppression).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.privacy._plan import SuppressionPlan
from ecgaudit.schema import RATE_METRICS

__all__ = [
    "REASON_COMPLEMENTARY",
    "REASON_EVENTS",
    "REASON_SUPPRESSED",
    "suppress_cohort",
    "suppress_disparities",
    "suppress_extras",
    "suppress_metrics",
]

REASON_SUPPRESSED = "fewer than {k} patients in this group: suppressed for privacy"
REASON_COMPLEMENTARY = (
    "withheld for privacy (complementary suppression): otherwise a suppressed small cell "
    "could be derived by subtraction from the published totals"
)
REASON_EVENTS = (
    "withheld for privacy: a true/false positive or negative count of this group is between "
    "1 and {k1} ECGs and this rate would reveal it"
)

_VALUE_COLS = ("estimate", "ci_low", "ci_high")
_DISP_VALUE_COLS = (
    "difference", "difference_ci_low", "difference_ci_high", "ratio", "ratio_ci_low",
    "ratio_ci_high", "p_value", "p_holm", "p_bh",
)


def _reason(why: str, k: int, events: bool) -> str:
    if why == "complementary":
        return REASON_COMPLEMENTARY
    return REASON_EVENTS.format(k1=k - 1) if events else REASON_SUPPRESSED.format(k=k)


def suppress_metrics(metrics: pd.DataFrame, plan: SuppressionPlan) -> pd.DataFrame:
    """Blank withheld groups, withheld ``n_pos`` and withheld threshold rates.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The tidy metric table.
    plan : SuppressionPlan
        What to withhold.

    Returns
    -------
    pandas.DataFrame
        A copy; withheld rows have ``status="suppressed"`` and the reason.
    """
    out = metrics.copy()
    out["n"] = out["n"].astype("Int64")
    out["n_pos"] = out["n_pos"].astype("Int64")
    k = plan.k
    keys = list(zip(out["task"].astype(str).tolist(), out["attribute"].astype(str).tolist(),
                    out["group"].astype(str).tolist()))
    group_why = [plan.groups.get((a, g)) for _, a, g in keys]
    pos_hidden = np.array([plan.positives_hidden(*key) for key in keys], dtype=bool)
    is_rate = out["metric"].isin(list(RATE_METRICS)).to_numpy()
    rate_why = [plan.positives.get(key) or plan.rates.get(key) for key in keys]
    whole = np.array([w is not None for w in group_why], dtype=bool)
    rates = is_rate & ~whole & np.array([plan.rates_hidden(*key) for key in keys], dtype=bool)
    blank = whole | rates
    for col in _VALUE_COLS:
        out.loc[blank, col] = np.nan
    out.loc[whole, "n"] = pd.NA
    out.loc[pos_hidden | whole, "n_pos"] = pd.NA
    out.loc[blank, "ci_method"] = "none"
    out.loc[blank, "status"] = "suppressed"
    reasons = np.array(out["reason"].astype(object).tolist(), dtype=object)
    for i in np.flatnonzero(blank):
        if whole[i]:
            reasons[i] = _reason(str(group_why[i]), k, events=False)
        else:
            reasons[i] = _reason(str(rate_why[i] or "primary"), k, events=True)
    out["reason"] = reasons
    return out


def suppress_disparities(disparities: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Blank every comparison whose group or reference metric row is withheld.

    A difference with a published side gives the other side back, so a comparison is
    published only when both of its metric rows are.

    Parameters
    ----------
    disparities : pandas.DataFrame
        The disparity table.
    metrics : pandas.DataFrame
        The metric table after :func:`suppress_metrics`.

    Returns
    -------
    pandas.DataFrame
        A copy with withheld rows blanked (``status="suppressed"``, reason from the metric).
    """
    out = disparities.copy()
    if not len(out):
        return out
    gone = metrics.loc[metrics["status"] == "suppressed"]
    reason_of = {(str(t), str(a), str(g), str(m)): str(r) for t, a, g, m, r in
                 zip(*(gone[c].tolist() for c in ("task", "attribute", "group", "metric",
                                                  "reason")))}
    reasons = []
    for t, a, g, ref, m in zip(*(out[c].tolist() for c in ("task", "attribute", "group",
                                                           "reference", "metric"))):
        key, rkey = (str(t), str(a), str(g), str(m)), (str(t), str(a), str(ref), str(m))
        why = reason_of.get(key)
        if why is None and rkey in reason_of:
            why = f"reference group: {reason_of[rkey]}"
        reasons.append(why)
    small = np.array([r is not None for r in reasons], dtype=bool)
    for col in _DISP_VALUE_COLS:
        out.loc[small, col] = np.nan
    out.loc[small, "ci_method"] = "none"
    out.loc[small, "test"] = "none"
    out.loc[small, "status"] = "suppressed"
    col = np.array(out["reason"].astype(object).tolist(), dtype=object)
    for i in np.flatnonzero(small):
        col[i] = reasons[i]
    out["reason"] = col
    return out


def suppress_cohort(rows: list[dict[str, Any]], plan: SuppressionPlan) -> list[dict[str, Any]]:
    """Blank withheld counts in cohort-composition rows.

    Parameters
    ----------
    rows : list of dict
        Rows with ``attribute``, ``group``, ``n``, ``n_patients`` and ``n_pos_by_task``.
    plan : SuppressionPlan
        What to withhold.

    Returns
    -------
    list of dict
        New rows: a withheld group has ``status="suppressed"`` and no counts; a withheld
        ``n_pos`` is ``None``.
    """
    out = []
    for row in rows:
        a, g = str(row["attribute"]), str(row["group"])
        if plan.group_hidden(a, g):
            out.append({**row, "n": None, "n_patients": None,
                        "n_pos_by_task": {t: None for t in row["n_pos_by_task"]},
                        "status": "suppressed"})
            continue
        pos = {t: (None if plan.positives_hidden(t, a, g) else v)
               for t, v in row["n_pos_by_task"].items()}
        out.append({**row, "n_pos_by_task": pos, "status": "ok"})
    return out


def suppress_extras(extras: dict[str, Any], plan: SuppressionPlan) -> dict[str, Any]:
    """Remove per-group extras that would reveal a withheld count.

    Reliability-curve bins carry ECG counts and observed fractions (so positives), the
    calibration suite and ranking rows describe a group's rows, and the power figures are
    functions of the counts and the sensitivity: each is dropped where its counts are.

    Parameters
    ----------
    extras : dict
        ``curves``, ``calibration_suite``, ``ranking`` and ``power`` entries.
    plan : SuppressionPlan
        What to withhold.

    Returns
    -------
    dict
        A new dict (other keys unchanged).
    """
    out = dict(extras)
    curves = {}
    for task, panels in (extras.get("curves") or {}).items():
        kept = {}
        for attr, groups in panels.items():
            g_kept = {g: c for g, c in groups.items()
                      if not plan.positives_hidden(task, attr, g)}
            if g_kept:
                kept[attr] = g_kept
        curves[task] = kept
    out["curves"] = curves
    out["calibration_suite"] = [r for r in extras.get("calibration_suite") or []
                                if not plan.group_hidden(r["attribute"], r["group"])]
    out["ranking"] = [r for r in extras.get("ranking") or []
                      if not plan.group_hidden(r["attribute"], r["group"])]
    power = []
    for r in extras.get("power") or []:
        key = (r["task"], r["attribute"], r["group"])
        ref = (r["task"], r["attribute"], r["reference"])
        if plan.group_hidden(*key[1:]) or plan.group_hidden(*ref[1:]):
            continue
        r = dict(r)
        if plan.positives_hidden(*key) or plan.positives_hidden(*ref):
            r["min_detectable_auroc_difference"] = None
        if plan.rates_hidden(*key) or plan.rates_hidden(*ref):
            r["min_detectable_sensitivity_difference"] = None
        power.append(r)
    out["power"] = power
    return out
