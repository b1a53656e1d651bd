"""Newcombe's (2006) method-5 AUROC score interval: the one home of its bisection.

The limits solve ``(A - theta)^2 = z^2 deff V(theta)`` with the Hanley-McNeil variance
``V`` at ``theta`` and ``m, n`` replaced by ``N* = (m + n) / 2`` inside the bracket
(:func:`score_gap` is that equation, negative inside the interval). Each end is a bisection:
the lower limit in ``[0, A]``, the upper in ``[A, 1]``, ``iterations`` halvings each.

* :func:`auc_limit` - one end for one comparison (scalar, compiled): the compiled inverted
  p-value search of :mod:`ecgaudit.disparity._inversion` calls it per step;
* :func:`auc_limits` - both ends for flat arrays: the compiled loop over :func:`auc_limit`,
  or without numba the same bisection as numpy array operations (both call
  :func:`score_gap`).

The arithmetic is IEEE double, operation for operation the numpy formulation the project
has always used (no fast-math; numpy's ``x ** 2`` of an array is one product ``x * x``), so
both paths give identical bits: ``tests/test_score_limits.py`` asserts equality.
:func:`ecgaudit.metrics._smallsample.auc_score_limits` is the public entry (broadcasting).
"""

from __future__ import annotations

import math

import numpy as np

from ecgaudit.metrics._compile import HAVE_NUMBA, _vijit, _vjit, plain

__all__ = ["AUC_ITERATIONS", "HAVE_NUMBA", "auc_limit", "auc_limits", "score_gap"]

#: Bisection steps of each end (60 halve the bracket to below 1e-17).
AUC_ITERATIONS = 60


@_vijit
def score_gap(theta: float, a: float, m: float, n: float, zz: float) -> float:
    """Return ``(a - theta)**2 - zz * V(theta)``: negative inside the score interval.

    Parameters
    ----------
    theta : float or ndarray
        Candidate AUROC.
    a : float or ndarray
        The estimate, clipped to ``[0, 1]``.
    m, n : float or ndarray
        Positives and negatives (> 0).
    zz : float or ndarray
        ``z * z * deff``.

    Returns
    -------
    float or ndarray
        The gap (scalars compiled, arrays through ``plain(score_gap)``).
    """
    ns = (m + n) / 2.0
    bracket = 1.0 + (ns - 1.0) * ((1.0 - theta) / (2.0 - theta) + theta / (1.0 + theta))
    hm = theta * (1.0 - theta) * bracket / (m * n)
    diff = a - theta
    return diff * diff - zz * hm


@_vijit
def auc_limit(auc: float, m: float, n: float, z: float, deff: float, iterations: int,
              upper: bool) -> float:
    """One end of the score interval for one comparison.

    Parameters
    ----------
    auc : float
        Mann-Whitney AUROC estimate.
    m, n : float
        Positives and negatives.
    z : float
        Normal quantile.
    deff : float
        Design effect multiplying the variance.
    iterations : int
        Bisection steps.
    upper : bool
        The upper limit (else the lower).

    Returns
    -------
    float
        The limit; ``nan`` where ``auc`` or ``deff`` is not finite or a class is empty.
    """
    if not (math.isfinite(auc) and m > 0 and n > 0 and math.isfinite(deff)):
        return math.nan
    a = min(max(auc, 0.0), 1.0)
    zz = z * z * deff
    lo, hi = (a, 1.0) if upper else (0.0, a)
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        # Inside the interval the upper limit lies above mid, the lower one below.
        if (score_gap(mid, a, m, n, zz) < 0) == upper:
            lo = mid
        else:
            hi = mid
    if upper:
        return 1.0 if a >= 1.0 else lo
    return 0.0 if a <= 0.0 else hi


@_vjit
def _auc_limits(a: np.ndarray, m: np.ndarray, n: np.ndarray, z: np.ndarray,
                d: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Both ends of every entry of flat float64 arrays (compiled loop)."""
    low = np.empty(a.size)
    high = np.empty(a.size)
    for i in range(a.size):
        low[i] = auc_limit(a[i], m[i], n[i], z[i], d[i], iterations, False)
        high[i] = auc_limit(a[i], m[i], n[i], z[i], d[i], iterations, True)
    return low, high


def _auc_limits_numpy(a: np.ndarray, m: np.ndarray, n: np.ndarray, z: np.ndarray,
                      d: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_auc_limits` as array operations (without numba; the same steps)."""
    gap = plain(score_gap)
    ok = np.isfinite(a) & (m > 0) & (n > 0) & np.isfinite(d)
    a = np.where(ok, np.clip(a, 0.0, 1.0), 0.5)
    m, n = np.where(ok, m, 1.0), np.where(ok, n, 1.0)
    zz = z * z * np.where(ok, d, 1.0)
    lo, hi = np.zeros_like(a), a.copy()  # lower limit in [0, a]: f(0) >= 0 >= f(a)
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        inside = gap(mid, a, m, n, zz) < 0
        hi, lo = np.where(inside, mid, hi), np.where(inside, lo, mid)
    low = np.where(a <= 0.0, 0.0, hi)
    lo, hi = a.copy(), np.ones_like(a)  # upper limit in [a, 1]: f(a) <= 0 <= f(1)
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        inside = gap(mid, a, m, n, zz) < 0
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    high = np.where(a >= 1.0, 1.0, lo)
    return np.where(ok, low, np.nan), np.where(ok, high, np.nan)


def auc_limits(a: np.ndarray, m: np.ndarray, n: np.ndarray, z: np.ndarray, d: np.ndarray,
               iterations: int = AUC_ITERATIONS, *, compiled: bool = HAVE_NUMBA
               ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper score limits of flat, equally long float64 arrays.

    Parameters
    ----------
    a, m, n, z, d : ndarray
        AUROC, positives, negatives, normal quantile and design effect (1-d, float64).
    iterations : int
        Bisection steps of each end.
    compiled : bool
        The compiled loop (default with numba) or the numpy array operations.

    Returns
    -------
    tuple of ndarray
        ``(low, high)``, ``nan`` where ``a`` or ``d`` is not finite or a class is empty.
    """
    if compiled:
        return _auc_limits(a, m, n, z, d, iterations)
    return _auc_limits_numpy(a, m, n, z, d, iterations)
