"""Suppress cells with 1..k-1 patients (default k = 11) so no small group can be singled out.

A suppressed row keeps its identifying columns (task, attribute, group, metric) but loses
every number derived from the group's data: estimate, interval, n and n_pos.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["REASON_SUPPRESSED", "suppress_cohort", "suppress_disparities", "suppress_metrics"]

REASON_SUPPRESSED = "fewer than {k} patients in this group: suppressed for privacy"

_VALUE_COLS = ("estimate", "ci_low", "ci_high")
_DISP_VALUE_COLS = (
    "difference", "difference_ci_low", "difference_ci_high", "ratio", "ratio_ci_low",
    "ratio_ci_high", "p_value", "p_holm", "p_bh",
)


def _small(units: pd.Series, k: int) -> np.ndarray:
    u = units.to_numpy(dtype=float)
    return (u > 0) & (u < k)


def suppress_metrics(metrics: pd.DataFrame, units: pd.Series, k: int) -> pd.DataFrame:
    """Suppress metric rows whose group has ``1 <= units < k`` patients.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The tidy metric table.
    units : pandas.Series
        Patients (or ECGs when no patient column is given) per row's group, aligned.
    k : int
        Minimum cell size.

    Returns
    -------
    pandas.DataFrame
        A copy with suppressed rows blanked and ``status="suppressed"``.
    """
    out = metrics.copy()
    small = _small(units, k)
    for col in _VALUE_COLS:
        out.loc[small, col] = np.nan
    out["n"] = out["n"].astype("Int64")
    out["n_pos"] = out["n_pos"].astype("Int64")
    out.loc[small, ["n", "n_pos"]] = pd.NA
    out.loc[small, "ci_method"] = "none"
    out.loc[small, "status"] = "suppressed"
    out.loc[small, "reason"] = REASON_SUPPRESSED.format(k=k)
    return out


def suppress_disparities(
    disparities: pd.DataFrame, group_units: pd.Series, ref_units: pd.Series, k: int
) -> pd.DataFrame:
    """Suppress comparisons in which the group or the reference is a small cell.

    Parameters
    ----------
    disparities : pandas.DataFrame
        The disparity table.
    group_units, ref_units : pandas.Series
        Patients in each row's group and reference, aligned.
    k : int
        Minimum cell size.

    Returns
    -------
    pandas.DataFrame
        A copy with suppressed rows blanked.
    """
    out = disparities.copy()
    small = _small(group_units, k) | _small(ref_units, k)
    for col in _DISP_VALUE_COLS:
        out.loc[small, col] = np.nan
    out.loc[small, "ci_method"] = "none"
    out.loc[small, "test"] = "none"
    out.loc[small, "status"] = "suppressed"
    out.loc[small, "reason"] = REASON_SUPPRESSED.format(k=k)
    return out


def suppress_cohort(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Blank the counts of small cells in cohort-composition rows.

    Parameters
    ----------
    rows : list of dict
        Rows with ``n``, ``n_patients`` and ``n_pos_by_task``.
    k : int
        Minimum cell size.

    Returns
    -------
    list of dict
        New rows; small cells have ``status="suppressed"`` and no counts.
    """
    out = []
    for row in rows:
        units = row.get("n_patients", row["n"])
        if 0 < units < k:
            out.append({**row, "n": None, "n_patients": None,
                        "n_pos_by_task": {t: None for t in row["n_pos_by_task"]},
                        "status": "suppressed"})
        else:
            out.append({**row, "status": "ok"})
    return out
