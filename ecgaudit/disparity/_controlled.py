"""Disparities controlled for declared attributes (``control: [site]``), beside the crude ones.

Each group is compared with its attribute's reference *within* every stratum of the
control attributes (the intersection of their groups, ``Unknown`` included), and the
stratum comparisons are pooled (:mod:`ecgaudit.disparity._pooled`): Mantel-Haenszel for
the threshold rates (difference and ratio; CMH test; Breslow-Day heterogeneity),
inverse-variance for the AUROC difference (z-test; Cochran's Q). A stratum contributes when
both the group and the reference have at least ``min_cell_size`` rows in it (and, for
AUROC, at least two positives and two negatives each); ``n_strata`` says how many did.

Rows have the disparity columns (``ecgaudit.schema.DISPARITY_COLUMNS``) plus ``control``
(control attributes joined by ``" & "``), ``n_strata``, ``heterogeneity_test``,
``heterogeneity_statistic``, ``heterogeneity_df``, ``heterogeneity_p`` and ``i2``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ecgaudit.disparity._pooled import (
    breslow_day,
    cmh_test,
    inverse_variance,
    mh_rate_difference,
    mh_rate_ratio,
)
from ecgaudit.metrics import delong_auc_variance
from ecgaudit.schema import RATE_METRICS

__all__ = ["CONTROLLED_EXTRA_COLUMNS", "controlled_comparisons", "rate_indicators"]

NAN = float("nan")
CONTROLLED_EXTRA_COLUMNS = ("control", "n_strata", "heterogeneity_test",
                            "heterogeneity_statistic", "heterogeneity_df", "heterogeneity_p",
                            "i2")


def rate_indicators(y: np.ndarray, flagged: np.ndarray) -> dict[str, tuple[np.ndarray,
                                                                         np.ndarray]]:
    """Per rate metric, the (denominator, event) indicator of every row."""
    pos, neg = y == 1, y != 1
    all_rows = np.ones(y.size, dtype=bool)
    return {
        "sensitivity": (pos, flagged), "specificity": (neg, ~flagged),
        "ppv": (flagged, pos), "npv": (~flagged, neg),
        "fnr": (pos, ~flagged), "fpr": (neg, flagged), "flag_rate": (all_rows, flagged),
    }


def _blank(metric: str, control: str) -> dict[str, Any]:
    return {"metric": metric, "difference": NAN, "difference_ci_low": NAN,
            "difference_ci_high": NAN, "ratio": NAN, "ratio_ci_low": NAN,
            "ratio_ci_high": NAN, "ci_method": "none", "test": "none", "p_value": NAN,
            "status": "ok", "reason": "", "control": control, "n_strata": 0,
            "heterogeneity_test": "none", "heterogeneity_statistic": NAN,
            "heterogeneity_df": None, "heterogeneity_p": NAN, "i2": NAN}


def _insufficient(row: dict[str, Any], why: str) -> dict[str, Any]:
    row.update(status="insufficient", reason=why)
    return row


def _at_bound(events: np.ndarray, n: np.ndarray) -> bool:
    return bool(np.all(events == 0) or np.all(events == n))


def _rate_row(metric: str, control: str, den: np.ndarray, ev: np.ndarray, g: np.ndarray,
              r: np.ndarray, strata: np.ndarray, n_strata: int, usable: np.ndarray,
              level: float) -> dict[str, Any]:
    row = _blank(metric, control)
    n1 = np.bincount(strata[g & den], minlength=n_strata).astype(float)
    a = np.bincount(strata[g & den & ev], minlength=n_strata).astype(float)
    n0 = np.bincount(strata[r & den], minlength=n_strata).astype(float)
    c = np.bincount(strata[r & den & ev], minlength=n_strata).astype(float)
    keep = usable & (n1 > 0) & (n0 > 0)
    if not keep.any():
        return _insufficient(row, "no stratum holds both groups with enough rows")
    a, n1, c, n0 = a[keep], n1[keep], c[keep], n0[keep]
    rd, lo, hi = mh_rate_difference(a, n1, c, n0, level)
    rr, rlo, rhi = mh_rate_ratio(a, n1, c, n0, level)
    stat, df, hp = breslow_day(a, n1, c, n0)
    if _at_bound(a, n1) or _at_bound(c, n0):
        # Wald-type intervals collapse when a rate is 0 or 1 in every stratum.
        lo = hi = rlo = rhi = NAN
        row["reason"] = "a rate is 0 or 1 in every stratum: no interval (test only)"
    row.update(difference=rd, difference_ci_low=lo, difference_ci_high=hi, ratio=rr,
               ratio_ci_low=rlo, ratio_ci_high=rhi,
               ci_method="mantel-haenszel (sato / greenland-robins)", test="cmh",
               p_value=cmh_test(a, n1, c, n0), n_strata=int(keep.sum()),
               heterogeneity_test="breslow-day-tarone", heterogeneity_statistic=stat,
               heterogeneity_df=df, heterogeneity_p=hp)
    return row


def _auroc_row(control: str, y: np.ndarray, p: np.ndarray, g: np.ndarray, r: np.ndarray,
               strata: np.ndarray, n_strata: int, usable: np.ndarray,
               level: float) -> dict[str, Any]:
    row = _blank("auroc", control)
    diffs, variances = [], []
    for k in np.flatnonzero(usable):
        in_k = strata == k
        gk, rk = g & in_k, r & in_k
        ag, vg = delong_auc_variance(y[gk], p[gk])
        ar, vr = delong_auc_variance(y[rk], p[rk])
        v = vg + vr
        if np.isfinite(v) and v > 0:
            diffs.append(ag - ar)
            variances.append(v)
    if not diffs:
        return _insufficient(row, "no stratum with two positives and two negatives in "
                                  "both groups and a positive variance")
    pooled = inverse_variance(np.asarray(diffs), np.asarray(variances), level)
    row.update(difference=pooled.estimate, difference_ci_low=max(-1.0, pooled.ci_low),
               difference_ci_high=min(1.0, pooled.ci_high),
               ci_method="inverse-variance (delong)", test="inverse-variance-z",
               p_value=pooled.p_value, n_strata=len(diffs), heterogeneity_test="cochran-q",
               heterogeneity_statistic=pooled.heterogeneity,
               heterogeneity_df=pooled.heterogeneity_df,
               heterogeneity_p=pooled.heterogeneity_p, i2=pooled.i2)
    return row


def controlled_comparisons(y: np.ndarray, p: np.ndarray, threshold: float,
                           codes: np.ndarray, groups: tuple[str, ...], reference: int,
                           strata: np.ndarray, control: str, *, min_cell_size: int,
                           level: float = 0.95) -> list[dict[str, Any]]:
    """Compare every group with the reference within control strata, pooled.

    Parameters
    ----------
    y, p : ndarray
        Labels (0/1) and scores of every row.
    threshold : float
        Frozen operating threshold (``p >= threshold`` flags).
    codes : ndarray of int
        Group code of every row (of the compared attribute).
    groups : tuple of str
        Group names.
    reference : int
        Reference group index.
    strata : ndarray of int
        Control stratum of every row (``0..S-1``).
    control : str
        Name of the control attributes (stored in each row).
    min_cell_size : int
        A stratum contributes only when the group and the reference each have at least
        this many rows in it.
    level : float
        Confidence level.

    Returns
    -------
    list of dict
        One row per non-reference group and metric (AUROC, then the rate metrics), with
        ``group`` and ``reference`` set.
    """
    y = np.asarray(y).astype(np.int8)
    p = np.asarray(p, dtype=float)
    strata = np.asarray(strata, dtype=np.int64)
    n_strata = int(strata.max()) + 1 if strata.size else 0
    ind = rate_indicators(y, p >= threshold)
    r = np.asarray(codes) == reference
    r_size = np.bincount(strata[r], minlength=n_strata)
    rows = []
    for i, name in enumerate(groups):
        if i == reference:
            continue
        g = np.asarray(codes) == i
        usable = (np.bincount(strata[g], minlength=n_strata) >= min_cell_size) & (
            r_size >= min_cell_size)
        out = [_auroc_row(control, y, p, g, r, strata, n_strata, usable, level)]
        out += [_rate_row(m, control, *ind[m], g, r, strata, n_strata, usable, level)
                for m in RATE_METRICS]
        rows += [{"group": name, "reference": groups[reference], **row} for row in out]
    return rows
