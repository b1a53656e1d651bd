"""Closed-form intervals and tests that stay informative at the boundary (small groups).

Every function is vectorised over numpy arrays (one entry per group or comparison) and
takes the normal quantile ``z`` explicitly, so that the tests can invert the intervals.

* :func:`wilson_limits`: Wilson score interval of a proportion with Brown, Cai & DasGupta's
  (2001) boundary modification (exact Poisson limits for 1-2 events); with a design effect
  ``deff`` the Kish effective counts ``k / deff`` and ``n / deff`` enter (patient
  clustering). Never of zero width for ``n > 0``.
* :func:`auc_score_limits`: score-type interval for the Mann-Whitney AUROC (Newcombe 2006,
  method 5): the limits solve ``(A - theta)^2 = z^2 deff V(theta)`` with the Hanley-McNeil
  variance ``V`` at ``theta`` and ``m, n`` replaced by ``N* = (m + n) / 2`` inside the
  bracket. Like Wilson's interval it is informative at AUROC = 0 or 1.
* :func:`poisson_ratio_limits`: exact (Garwood) Poisson interval of the observed events,
  divided by the expected events (O/E).
* :func:`mover_difference` / :func:`mover_ratio`: the method of variance estimates recovery
  (Zou & Donner 2008; Newcombe 2016, MOVER-R) combining two groups' intervals into an
  interval for the difference / ratio. With Wilson intervals the difference is Newcombe's
  hybrid score interval (method 10, 1998). MOVER-R handles a zero numerator (limit 0);
  the ratio is undefined when the reference estimate is 0.
* :func:`inverted_p_value`: the two-sided p-value of ``difference = 0`` obtained by inverting
  a family of intervals: the smallest ``alpha`` at which the ``1 - alpha`` interval excludes
  0, so the test and the reported interval never disagree.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import chi2

from ecgaudit.metrics._scorekernels import auc_limits

__all__ = [
    "auc_score_limits",
    "inverted_p_value",
    "mover_difference",
    "mover_ratio",
    "poisson_ratio_limits",
    "wilson_limits",
    "z_of",
]

Limits = tuple[np.ndarray, np.ndarray]


def z_of(level: float) -> float:
    """Two-sided normal quantile of a confidence level."""
    return float(ndtri(0.5 + level / 2.0))


def _arr(x: object) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def wilson_limits(k: object, n: object, z: object, deff: object = 1.0, *,
                  modified: bool = True) -> Limits:
    """Return modified Wilson score limits of ``k / n`` (``nan`` where ``n <= 0``).

    Parameters
    ----------
    k, n : array_like
        Successes and trials.
    z : array_like
        Normal quantile (``1.96`` for 95%).
    deff : array_like
        Design effect (>= 1 with clustering): the interval uses ``k / deff`` of
        ``n / deff`` (same proportion, effective sample size ``n / deff``).
    modified : bool
        Brown-Cai-DasGupta boundary modification (default): for ``1 <= k <= k*``
        (``k* = 2`` for ``n <= 50``, else 3) the lower limit is the exact Poisson limit
        ``chi2_{2k}(alpha/2) / (2 n)`` when that is lower (and symmetrically the upper limit
        near ``n``). ``False``: the plain Wilson interval (statsmodels' ``wilson``).

    Returns
    -------
    tuple of ndarray
        Lower and upper limits.
    """
    k, n, z, d = np.broadcast_arrays(_arr(k), _arr(n), _arr(z), _arr(deff))
    ne = np.where(n > 0, n / d, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ph = np.where(n > 0, k / n, np.nan)
        denom = 1.0 + z * z / ne
        centre = (ph + z * z / (2 * ne)) / denom
        half = z * np.sqrt(ph * (1 - ph) / ne + z * z / (4 * ne * ne)) / denom
        low, high = np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)
        if not modified:
            return low, high
        # Brown, Cai & DasGupta (2001): near 0 (1 <= k <= k*) the lower limit is the exact
        # Poisson one, near 1 the upper limit likewise; this removes Wilson's coverage
        # dips next to the boundary.
        ke, fe = k / d, (n - k) / d
        star = np.where(ne <= 50, 2.0, 3.0)
        if not (((ke >= 1.0) & (ke <= star)) | ((fe >= 1.0) & (fe <= star))).any():
            return low, high
        tail = ndtr(-z)
        pois_lo = chi2.ppf(tail, 2.0 * np.maximum(ke, 1e-12)) / (2.0 * ne)
        pois_hi = 1.0 - chi2.ppf(tail, 2.0 * np.maximum(fe, 1e-12)) / (2.0 * ne)
        low = np.where((ke >= 1.0) & (ke <= star), np.minimum(low, pois_lo), low)
        high = np.where((fe >= 1.0) & (fe <= star), np.maximum(high, pois_hi), high)
    return low, high


def auc_score_limits(auc: object, m: object, n: object, z: object, deff: object = 1.0,
                     iterations: int = 60) -> Limits:
    """Newcombe's (2006) method-5 score interval for the AUROC.

    Parameters
    ----------
    auc : array_like
        Mann-Whitney AUROC estimates.
    m, n : array_like
        Positives and negatives.
    z : array_like
        Normal quantile.
    deff : array_like
        Design effect multiplying the variance (patient clustering).
    iterations : int
        Bisection steps (60 halve the bracket to below 1e-17).

    Returns
    -------
    tuple of ndarray
        Lower and upper limits (``nan`` where ``auc`` is not finite or a class is empty).

    Notes
    -----
    The bisection lives in :mod:`ecgaudit.metrics._scorekernels` (compiled with numba,
    numpy array operations without it; the same values).
    """
    arrays = np.broadcast_arrays(_arr(auc), _arr(m), _arr(n), _arr(z), _arr(deff))
    shape = arrays[0].shape
    low, high = auc_limits(*(np.ravel(x) for x in arrays), iterations)
    return low.reshape(shape), high.reshape(shape)


def poisson_ratio_limits(observed: object, expected: object, level: float,
                         deff: object = 1.0) -> Limits:
    """Exact Poisson (Garwood 1936) limits of ``observed / expected``.

    Parameters
    ----------
    observed : array_like
        Observed events.
    expected : array_like
        Expected events (sum of predicted risks), > 0.
    level : float
        Confidence level.
    deff : array_like
        Design effect: the effective counts ``observed / deff`` and ``expected / deff``
        enter (same ratio, wider interval).

    Returns
    -------
    tuple of ndarray
        Lower and upper limits (``nan`` where ``expected <= 0``).
    """
    o, e, d = np.broadcast_arrays(_arr(observed), _arr(expected), _arr(deff))
    oe, ee = o / d, np.where(e > 0, e / d, np.nan)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore"):
        lo = np.where(oe > 0, chi2.ppf(alpha / 2, 2 * oe) / 2, 0.0)
        hi = chi2.ppf(1 - alpha / 2, 2 * oe + 2) / 2
    return lo / ee, hi / ee


def mover_difference(e1: object, l1: object, u1: object, e2: object, l2: object,
                     u2: object) -> Limits:
    """MOVER interval of ``e1 - e2`` from the groups' own limits (Zou & Donner 2008)."""
    e1, l1, u1, e2, l2, u2 = (_arr(x) for x in (e1, l1, u1, e2, l2, u2))
    d = e1 - e2
    return (d - np.sqrt((e1 - l1) ** 2 + (u2 - e2) ** 2),
            d + np.sqrt((u1 - e1) ** 2 + (e2 - l2) ** 2))


def mover_ratio(e1: object, l1: object, u1: object, e2: object, l2: object,
                u2: object) -> Limits:
    """MOVER-R interval of ``e1 / e2`` for non-negative quantities (Newcombe 2016).

    The lower limit ``L`` is the root of ``L^2 u2 (2 e2 - u2) - 2 L e1 e2 + l1 (2 e1 - l1)``
    (the MOVER interval of ``e1 - L e2`` then ends at 0), the upper limit ``U`` the root of
    ``U^2 l2 (2 e2 - l2) - 2 U e1 e2 + u1 (2 e1 - u1)``. ``e1 = 0`` gives ``L = 0``;
    ``e2 = 0`` (or ``l2 = 0``) leaves the ratio undefined (``nan``; ``U`` infinite when
    only ``l2 = 0``).
    """
    e1, l1, u1, e2, l2, u2 = (_arr(x) for x in (e1, l1, u1, e2, l2, u2))
    p = e1 * e2
    with np.errstate(invalid="ignore", divide="ignore"):
        a_lo = u2 * (2 * e2 - u2)
        disc_lo = np.sqrt(np.maximum(p * p - a_lo * l1 * (2 * e1 - l1), 0.0))
        lin_lo = l1 * (2 * e1 - l1) / (2 * p)
        low = np.where(np.abs(a_lo) > 1e-300, (p - disc_lo) / a_lo, lin_lo)
        low = np.where(e1 <= 0, 0.0, low)
        a_hi = l2 * (2 * e2 - l2)
        disc_hi = np.sqrt(np.maximum(p * p - a_hi * u1 * (2 * e1 - u1), 0.0))
        high = np.where(a_hi > 0, (p + disc_hi) / a_hi, np.inf)
    undefined = ~(e2 > 0) | ~np.isfinite(e1)
    return np.where(undefined, np.nan, np.maximum(low, 0.0)), np.where(undefined, np.nan, high)


def inverted_p_value(diff: object, limits: Callable[[np.ndarray], Limits],
                     iterations: int = 50, level: float | None = None,
                     search: Callable[[np.ndarray], Limits] | None = None) -> np.ndarray:
    """Two-sided p-value of ``difference = 0`` by inverting a family of intervals.

    Far in the tail the inversion depends on how the method's limits behave at extreme
    levels: score intervals of a small group near an AUROC or rate of 1 widen very slowly
    (their variance vanishes at the boundary), so the inverted p of a 30-ECG group can be
    1e-12. With ``level`` the p-value is therefore the larger of the inverted p and the
    normal p ``2 Phi(-|d| / se)`` whose ``se`` is the half-width of the reported interval
    on the side facing 0 divided by its quantile (the test-based standard error of Altman
    & Bland 2011, taken on the near side). Both are below ``1 - level`` exactly when that
    interval excludes 0, so the row's p and interval still agree.

    Parameters
    ----------
    diff : array_like
        Point differences.
    limits : callable
        ``limits(z) -> (low, high)`` of the difference interval at normal quantile ``z``
        (arrays broadcast against ``diff``); the interval must widen as ``z`` grows.
    iterations : int
        Bisection steps on ``z`` in ``[0, 40]``.
    level : float, optional
        The reported confidence level (see above); without it, the plain inversion.
    search : callable, optional
        ``search(diff) -> (lo, hi)``: the final bracket of this bisection computed another
        way (the compiled AUROC search of ``ecgaudit.disparity._inversion``: the same steps).

    Returns
    -------
    ndarray
        ``p < 1 - level`` exactly when the ``level`` interval excludes 0.
        1 where the difference is 0, ``nan`` where it is undefined.
    """
    d = _arr(diff)
    lo = np.zeros_like(d)
    hi = np.full_like(d, 40.0)
    if search is not None:
        lo, hi = search(d)
    for _ in range(iterations if search is None else 0):
        mid = (lo + hi) / 2.0
        low, high = limits(mid)
        excludes = np.where(d > 0, low > 0, high < 0)
        lo = np.where(excludes, mid, lo)
        hi = np.where(excludes, hi, mid)
    p = 2.0 * ndtr(-(lo + hi) / 2.0)
    if level is not None:
        z_level = float(ndtri(0.5 + level / 2.0))
        low, high = limits(np.full_like(d, z_level))
        near = np.where(d > 0, d - low, high - d)  # half-width on the side facing 0
        with np.errstate(divide="ignore", invalid="ignore"):
            normal = 2.0 * ndtr(-np.abs(d) * z_level / near)
        p = np.where(np.isfinite(normal) & (near > 0), np.maximum(p, normal), p)
    p = np.where(d == 0, 1.0, p)
    low, high = limits(np.full_like(d, 1e-9))
    undefined = ~np.isfinite(d) | ~np.isfinite(low) | ~np.isfinite(high)
    return np.where(undefined, np.nan, np.minimum(p, 1.0))
