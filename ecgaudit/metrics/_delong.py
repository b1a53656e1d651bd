"""DeLong variance of the AUROC (fast midrank algorithm of Sun & Xu, 2014).

Ties are handled exactly through midranks, so the AUROC equals the Mann-Whitney statistic
with ties counted as 1/2 and the variance is the DeLong et al. (1988) estimator.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

__all__ = ["delong_auc_variance", "delong_ci", "delong_paired", "delong_unpaired"]


def _components(y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Return the AUROC and the structural components V10 (positives), V01 (negatives)."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    pos, neg = p[y], p[~y]
    m, n = pos.size, neg.size
    r_all = rankdata(np.concatenate([pos, neg]))
    r_pos = rankdata(pos)
    r_neg = rankdata(neg)
    v10 = (r_all[:m] - r_pos) / n  # share of negatives below each positive (ties 1/2)
    v01 = 1.0 - (r_all[m:] - r_neg) / m  # share of positives above each negative
    # The AUROC as the mean of the structural components (equal to
    # ``_suffstats.auroc_value`` up to the last bit; kept in this order so that the paired
    # comparison and the controlled disparities keep their exact numbers).
    auc = float(np.mean(v10))
    return auc, v10, v01


def delong_auc_variance(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """AUROC and its DeLong variance.

    Parameters
    ----------
    y : ndarray of {0, 1}
        True labels.
    p : ndarray of float
        Scores.

    Returns
    -------
    auc : float
        AUROC (``nan`` if a class is missing).
    var : float
        DeLong variance (``nan`` if either class has fewer than 2 members).
    """
    y = np.asarray(y)
    m = int(np.count_nonzero(y))
    n = y.size - m
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    auc, v10, v01 = _components(y, p)
    if m < 2 or n < 2:
        return auc, float("nan")
    var = float(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    return auc, var


def delong_ci(auc: float, var: float, level: float = 0.95) -> tuple[float, float]:
    """Wald interval ``auc +/- z * sqrt(var)`` clipped to [0, 1].

    Parameters
    ----------
    auc, var : float
        AUROC and its DeLong variance.
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``nan`` when the variance is undefined.
    """
    if not (math.isfinite(auc) and math.isfinite(var)):
        return float("nan"), float("nan")
    z = float(ndtri(0.5 + level / 2.0))
    half = z * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def delong_unpaired(
    auc1: float, var1: float, auc2: float, var2: float, level: float = 0.95
) -> tuple[float, float, float, float]:
    """Compare two AUROCs from independent samples (disjoint groups).

    Parameters
    ----------
    auc1, var1 : float
        AUROC and DeLong variance of the group.
    auc2, var2 : float
        AUROC and DeLong variance of the reference.
    level : float
        Confidence level of the difference interval.

    Returns
    -------
    diff, low, high, p_value : float
        ``auc1 - auc2``, its Wald interval and the two-sided z-test p-value.
    """
    diff = auc1 - auc2
    se = math.sqrt(var1 + var2) if math.isfinite(var1 + var2) else float("nan")
    if not (math.isfinite(diff) and math.isfinite(se)):
        return diff, float("nan"), float("nan"), float("nan")
    z = float(ndtri(0.5 + level / 2.0))
    if se == 0.0:
        return diff, diff, diff, (1.0 if diff == 0.0 else 0.0)
    p_value = float(2.0 * ndtr(-abs(diff) / se))
    return diff, diff - z * se, diff + z * se, p_value


def delong_paired(
    y: np.ndarray, p1: np.ndarray, p2: np.ndarray, level: float = 0.95
) -> tuple[float, float, float, float]:
    """Compare two correlated AUROCs on the same rows (paired DeLong test).

    Parameters
    ----------
    y : ndarray of {0, 1}
        True labels.
    p1, p2 : ndarray of float
        Scores of model 1 (e.g. candidate) and model 2 (e.g. baseline) on the same rows.
    level : float
        Confidence level.

    Returns
    -------
    diff, low, high, p_value : float
        ``AUC1 - AUC2``, its interval and the two-sided p-value.
    """
    y = np.asarray(y)
    m = int(np.count_nonzero(y))
    n = y.size - m
    if m < 2 or n < 2:
        return float("nan"), float("nan"), float("nan"), float("nan")
    a1, v10a, v01a = _components(y, p1)
    a2, v10b, v01b = _components(y, p2)
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    diff = a1 - a2
    z = float(ndtri(0.5 + level / 2.0))
    if var <= 0.0:
        return diff, diff, diff, (1.0 if diff == 0.0 else 0.0)
    se = math.sqrt(var)
    return diff, diff - z * se, diff + z * se, float(2.0 * ndtr(-abs(diff) / se))
