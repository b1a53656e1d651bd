"""Stratified (pooled) comparisons of two groups across strata of control attributes.

Closed forms, one array entry per stratum:

* Rates (events ``a`` of ``n1`` in the group, ``c`` of ``n0`` in the reference): the
  Mantel-Haenszel risk difference with Sato's (1989) variance, the Mantel-Haenszel risk
  ratio with the Greenland-Robins (1985) variance of its log, the Cochran-Mantel-Haenszel
  test of no association given the strata (no continuity correction), and the
  Breslow-Day test (Tarone's correction) of a common odds ratio across strata.
* AUROC differences: the inverse-variance (fixed-effect) pooled difference of per-stratum
  DeLong differences, a z-test, and Cochran's Q test of heterogeneity (with I^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from scipy.stats import chi2, norm

__all__ = ["Pooled", "breslow_day", "cmh_test", "inverse_variance", "mh_rate_difference",
           "mh_rate_ratio"]

NAN = float("nan")


@dataclass(frozen=True)
class Pooled:
    """A pooled estimate with its interval, test and heterogeneity test."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    heterogeneity: float
    heterogeneity_df: int
    heterogeneity_p: float
    i2: float = NAN


def _z(level: float) -> float:
    return float(ndtri(0.5 + level / 2.0))


def _arrays(*xs: np.ndarray) -> list[np.ndarray]:
    return [np.asarray(x, dtype=float) for x in xs]


def mh_rate_difference(a: np.ndarray, n1: np.ndarray, c: np.ndarray, n0: np.ndarray,
                       level: float = 0.95) -> tuple[float, float, float]:
    """Mantel-Haenszel risk difference and its Wald interval (Sato's variance).

    Parameters
    ----------
    a, n1 : ndarray
        Events and denominators of the group, per stratum (every ``n1 > 0``).
    c, n0 : ndarray
        The same for the reference group (every ``n0 > 0``).
    level : float
        Confidence level.

    Returns
    -------
    estimate, ci_low, ci_high : float
    """
    a, n1, c, n0 = _arrays(a, n1, c, n0)
    t = n1 + n0
    w = (n1 * n0 / t).sum()
    rd = ((a * n0 - c * n1) / t).sum() / w
    p = ((n1**2 * c - n0**2 * a + n1 * n0 * (n0 - n1) / 2.0) / t**2).sum()
    q = ((a * (n0 - c) + c * (n1 - a)) / (2.0 * t)).sum()
    var = (rd * p + q) / w**2
    if not var > 0:
        return rd, NAN, NAN
    half = _z(level) * math.sqrt(var)
    return rd, max(-1.0, rd - half), min(1.0, rd + half)


def mh_rate_ratio(a: np.ndarray, n1: np.ndarray, c: np.ndarray, n0: np.ndarray,
                  level: float = 0.95) -> tuple[float, float, float]:
    """Mantel-Haenszel risk ratio with the Greenland-Robins log-scale interval.

    Returns
    -------
    estimate, ci_low, ci_high : float
        ``nan`` when either pooled numerator is 0.
    """
    a, n1, c, n0 = _arrays(a, n1, c, n0)
    t = n1 + n0
    r = (a * n0 / t).sum()
    s = (c * n1 / t).sum()
    if not (r > 0 and s > 0):
        return NAN, NAN, NAN
    var = ((n1 * n0 * (a + c) / t**2 - a * c / t).sum()) / (r * s)
    est = r / s
    if not var > 0:
        return est, NAN, NAN
    half = _z(level) * math.sqrt(var)
    return est, math.exp(math.log(est) - half), math.exp(math.log(est) + half)


def cmh_test(a: np.ndarray, n1: np.ndarray, c: np.ndarray, n0: np.ndarray) -> float:
    """Cochran-Mantel-Haenszel test of no group effect given the strata (p-value).

    Strata with fewer than two rows or no variation carry no information and are skipped.
    """
    a, n1, c, n0 = _arrays(a, n1, c, n0)
    t = n1 + n0
    m1 = a + c
    keep = t > 1
    expected = (n1 * m1 / t)[keep]
    var = (n1 * n0 * m1 * (t - m1) / (t**2 * (t - 1)))[keep]
    if not var.sum() > 0:
        return NAN
    stat = (a[keep].sum() - expected.sum()) ** 2 / var.sum()
    return float(chi2.sf(stat, 1))


def _fitted_a(n1: float, n0: float, m1: float, odds: float) -> float:
    lo, hi = max(0.0, m1 - n0), min(n1, m1)
    if odds == 1.0:
        return n1 * m1 / (n1 + n0)
    qa = odds - 1.0
    qb = -(odds * (n1 + m1) + n0 - m1)
    qc = odds * n1 * m1
    disc = math.sqrt(max(qb * qb - 4 * qa * qc, 0.0))
    for root in ((-qb - disc) / (2 * qa), (-qb + disc) / (2 * qa)):
        if lo - 1e-9 <= root <= hi + 1e-9:
            return min(max(root, lo), hi)
    return NAN


def breslow_day(a: np.ndarray, n1: np.ndarray, c: np.ndarray, n0: np.ndarray
                ) -> tuple[float, int, float]:
    """Breslow-Day test of a common odds ratio, with Tarone's correction.

    Returns
    -------
    statistic, df, p_value
        ``df`` is the number of informative strata minus one (``nan`` p-value below 2).
    """
    a, n1, c, n0 = _arrays(a, n1, c, n0)
    b, d, t = n1 - a, n0 - c, n1 + n0
    odds_num, odds_den = (a * d / t).sum(), (b * c / t).sum()
    if not (odds_num > 0 and odds_den > 0):
        return NAN, 0, NAN
    odds = odds_num / odds_den
    m1 = a + c
    resid, var = [], []
    for k in range(a.size):
        if m1[k] == 0 or m1[k] == t[k]:
            continue  # no events or no non-events: the stratum carries no information
        e = _fitted_a(n1[k], n0[k], m1[k], odds)
        cells = np.array([e, n1[k] - e, m1[k] - e, n0[k] - m1[k] + e])
        if not np.all(cells > 0):
            continue
        resid.append(a[k] - e)
        var.append(1.0 / np.sum(1.0 / cells))
    df = len(resid) - 1
    if df < 1:
        return NAN, max(df, 0), NAN
    r, v = np.asarray(resid), np.asarray(var)
    stat = float(np.sum(r**2 / v) - r.sum() ** 2 / v.sum())
    return stat, df, float(chi2.sf(stat, df))


def inverse_variance(d: np.ndarray, v: np.ndarray, level: float = 0.95) -> Pooled:
    """Fixed-effect inverse-variance pooling with Cochran's Q and I^2.

    Parameters
    ----------
    d : ndarray
        Per-stratum differences.
    v : ndarray
        Their variances (all ``> 0``).
    level : float
        Confidence level.

    Returns
    -------
    Pooled
    """
    d, v = _arrays(d, v)
    w = 1.0 / v
    est = float((w * d).sum() / w.sum())
    se = math.sqrt(1.0 / w.sum())
    half = _z(level) * se
    p = float(2.0 * norm.sf(abs(est) / se))
    df = d.size - 1
    if df < 1:
        return Pooled(est, est - half, est + half, p, NAN, 0, NAN)
    q = float((w * (d - est) ** 2).sum())
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return Pooled(est, est - half, est + half, p, q, df, float(chi2.sf(q, df)), i2)
