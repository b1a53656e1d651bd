"""Power: the smallest gap to the reference group an audit of this size can detect.

For a group and its reference (independent samples), the minimum detectable difference
``delta`` at two-sided level ``alpha`` with power ``1 - beta`` solves

    Phi(delta / se - z) + Phi(-delta / se - z) = 1 - beta,   z = Phi^-1(1 - alpha / 2),

i.e. ``delta ~= (z + Phi^-1(1 - beta)) * se`` (the second term, the wrong tail, is kept so
that the answer is exact for the normal test). ``se`` is the standard error of the
difference at the observed values:

* AUROC: ``se^2 = V(A_g; P_g, N_g) + V(A_ref; P_ref, N_ref)`` with the Hanley-McNeil (1982)
  variance ``V(A; P, N) = [A(1-A) + (P-1)(Q1-A^2) + (N-1)(Q2-A^2)] / (P N)``,
  ``Q1 = A/(2-A)``, ``Q2 = 2A^2/(1+A)`` (P positives, N negatives);
* a rate such as sensitivity (a proportion of the positives): the unpooled
  ``se^2 = p_g(1-p_g)/n_g + p_ref(1-p_ref)/n_ref``.

The report can then say "this audit cannot detect an AUROC gap smaller than delta".
"""

from __future__ import annotations

import math

from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

__all__ = ["hanley_mcneil_variance", "min_detectable_auroc_difference",
           "min_detectable_difference", "min_detectable_rate_difference"]


def hanley_mcneil_variance(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley-McNeil variance of an AUROC estimate.

    Parameters
    ----------
    auc : float
        AUROC (in [0, 1]).
    n_pos, n_neg : int
        Numbers of positives and negatives.

    Returns
    -------
    float
        The variance, ``nan`` if a class is empty or ``auc`` is undefined.
    """
    if n_pos < 1 or n_neg < 1 or not (0.0 <= auc <= 1.0):
        return float("nan")
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    num = auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)
    return num / (n_pos * n_neg)


def min_detectable_difference(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference a two-sided z-test with standard error ``se`` detects.

    Parameters
    ----------
    se : float
        Standard error of the estimated difference.
    alpha : float
        Two-sided significance level.
    power : float
        Required power.

    Returns
    -------
    float
        ``delta`` solving ``Phi(delta/se - z) + Phi(-delta/se - z) = power``.
    """
    if not (se > 0.0) or not math.isfinite(se):
        return float("nan")
    z = float(ndtri(1.0 - alpha / 2.0))

    def gap(k: float) -> float:
        return float(ndtr(k - z) + ndtr(-k - z)) - power

    k = brentq(gap, 0.0, z + float(ndtri(power)) + 10.0, xtol=1e-14, rtol=1e-15)
    return k * se


def min_detectable_auroc_difference(
    n_pos_g: int, n_neg_g: int, auc_g: float, n_pos_ref: int, n_neg_ref: int, auc_ref: float,
    *, alpha: float = 0.05, power: float = 0.8,
) -> float:
    """Minimum AUROC difference vs the reference detectable with the given power.

    Parameters
    ----------
    n_pos_g, n_neg_g : int
        Positives and negatives of the group.
    auc_g : float
        The group's AUROC.
    n_pos_ref, n_neg_ref : int
        Positives and negatives of the reference group.
    auc_ref : float
        The reference group's AUROC.
    alpha : float
        Two-sided level.
    power : float
        Power.

    Returns
    -------
    float
        The minimum detectable difference (``nan`` if a class is empty).
    """
    var = hanley_mcneil_variance(auc_g, n_pos_g, n_neg_g) + hanley_mcneil_variance(
        auc_ref, n_pos_ref, n_neg_ref)
    return min_detectable_difference(math.sqrt(var), alpha, power) if var > 0 else float("nan")


def min_detectable_rate_difference(
    n_g: int, rate_g: float, n_ref: int, rate_ref: float, *, alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Minimum difference of a proportion (e.g. sensitivity) vs the reference.

    Parameters
    ----------
    n_g : int
        Denominator of the group's rate (positives, for sensitivity).
    rate_g : float
        The group's rate.
    n_ref : int
        Denominator of the reference group's rate.
    rate_ref : float
        The reference group's rate.
    alpha : float
        Two-sided level.
    power : float
        Power.

    Returns
    -------
    float
        The minimum detectable difference (``nan`` if a denominator is 0 or both rates
        are 0 or 1, where the normal approximation has no variance).
    """
    if n_g < 1 or n_ref < 1:
        return float("nan")
    var = rate_g * (1 - rate_g) / n_g + rate_ref * (1 - rate_ref) / n_ref
    return min_detectable_difference(math.sqrt(var), alpha, power) if var > 0 else float("nan")
