"""Closed-form intervals and tests for proportions.

* :func:`wilson_ci`: Wilson score interval for one proportion.
* :func:`newcombe_diff_ci`: Newcombe's hybrid score interval (method 10, 1998) for a
  difference of two independent proportions, built from the two Wilson intervals.
* :func:`katz_ratio_ci`: Katz log interval for a ratio of proportions (0.5 added to each
  count when a numerator is 0).
* :func:`two_proportion_test`: pooled two-sided z-test (equivalent to Pearson's chi-square
  without continuity correction).
"""

from __future__ import annotations

import math

from scipy.special import ndtr, ndtri

__all__ = ["katz_ratio_ci", "newcombe_diff_ci", "two_proportion_test", "wilson_ci"]

_NAN2 = (float("nan"), float("nan"))


def _z(level: float) -> float:
    return float(ndtri(0.5 + level / 2.0))


def wilson_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n``.

    Parameters
    ----------
    k, n : int
        Successes and trials.
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        ``(low, high)``, or ``(nan, nan)`` if ``n == 0``.
    """
    if n <= 0:
        return _NAN2
    z = _z(level)
    phat = k / n
    denom = 1.0 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_diff_ci(
    k1: int, n1: int, k2: int, n2: int, level: float = 0.95
) -> tuple[float, float]:
    """Newcombe hybrid score interval for ``k1/n1 - k2/n2`` (independent samples).

    Parameters
    ----------
    k1, n1 : int
        Successes and trials of the group.
    k2, n2 : int
        Successes and trials of the reference.
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        ``(low, high)``, or ``(nan, nan)`` if a denominator is 0.
    """
    if n1 <= 0 or n2 <= 0:
        return _NAN2
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_ci(k1, n1, level)
    l2, u2 = wilson_ci(k2, n2, level)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def katz_ratio_ci(
    k1: int, n1: int, k2: int, n2: int, level: float = 0.95
) -> tuple[float, float]:
    """Katz log interval for the ratio ``(k1/n1) / (k2/n2)``.

    Parameters
    ----------
    k1, n1 : int
        Successes and trials of the group.
    k2, n2 : int
        Successes and trials of the reference.
    level : float
        Confidence level.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(nan, nan)`` if undefined (empty denominators, or both
        numerators 0).
    """
    if n1 <= 0 or n2 <= 0 or (k1 == 0 and k2 == 0):
        return _NAN2
    if k1 == 0 or k2 == 0:  # Haldane-Anscombe correction
        k1, n1, k2, n2 = k1 + 0.5, n1 + 0.5, k2 + 0.5, n2 + 0.5
    log_r = math.log((k1 / n1) / (k2 / n2))
    se = math.sqrt(max(1 / k1 - 1 / n1 + 1 / k2 - 1 / n2, 0.0))
    z = _z(level)
    return math.exp(log_r - z * se), math.exp(log_r + z * se)


def two_proportion_test(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided pooled z-test p-value for ``k1/n1 == k2/n2``.

    Parameters
    ----------
    k1, n1, k2, n2 : int
        Successes and trials of the two independent samples.

    Returns
    -------
    float
        p-value; ``nan`` if a denominator is 0; 1.0 if the pooled proportion is 0 or 1.
    """
    if n1 <= 0 or n2 <= 0:
        return float("nan")
    pooled = (k1 + k2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 1.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (k1 / n1 - k2 / n2) / se
    return float(2.0 * ndtr(-abs(z)))
