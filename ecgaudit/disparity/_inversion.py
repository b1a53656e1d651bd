"""Fast inverted p-values of the closed-form disparities, bit for bit the reference search.

:func:`ecgaudit.metrics._smallsample.inverted_p_value` bisects the normal quantile ``z`` in
``[0, 40]`` (50 steps) for the smallest ``alpha`` at which the difference interval excludes
0. Every step evaluates both groups' intervals, which for the AUROC are themselves two
60-step bisections (Newcombe's score interval): run as numpy calls on arrays of ~100
comparisons this costs ~12,000 small array operations per family. Here:

* **AUROC** (:func:`auroc_bracket`): the whole search, both groups' score limits (only the
  end of each that the test reads, by :func:`ecgaudit.metrics._scorekernels.auc_limit`, the
  one home of the score-interval bisection) and the MOVER difference, in one compiled pass
  per comparison. The arithmetic is the
  reference's operation for operation (IEEE double, no fast-math, ``x**2`` as ``x*x`` as
  numpy computes it), so the bracket - and the p-value - is identical.
* **O/E** (:func:`oe_limits`): the exact Poisson limits with
  ``scipy.special.gammaincinv`` called directly, as ``scipy.stats.chi2.ppf`` computes them
  (``2 * gammaincinv(df / 2, q)``, 0 at ``q = 0``, ``inf`` at ``q = 1``, ``nan`` for
  ``df <= 0`` or ``q`` outside ``[0, 1]``) without its per-call argument handling; identical
  values.

``tests/test_inversion.py`` checks both against the reference functions (equality, not a
tolerance). Without numba the AUROC search falls back to the numpy reference.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaincinv

from ecgaudit.metrics._compile import _vijit, _vjit
from ecgaudit.metrics._scorekernels import AUC_ITERATIONS, HAVE_NUMBA, auc_limit

__all__ = ["HAVE_NUMBA", "auroc_bracket", "chi2_ppf", "oe_limits"]


@_vijit
def _sq(x: float) -> float:
    """``x**2`` as numpy squares an array (one product)."""
    return x * x


@_vjit
def _auroc_bracket(diff: np.ndarray, g: np.ndarray, r: np.ndarray, dg: np.ndarray,
                   dr: np.ndarray, iterations: int, inner: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Return the final ``(lo, hi)`` of every comparison's ``z`` bisection (module doc)."""
    size = diff.size
    out_lo = np.empty(size)
    out_hi = np.empty(size)
    for i in range(size):
        d = diff[i]
        e1, e2 = g[i, 0], r[i, 0]
        lo, hi = 0.0, 40.0
        for _ in range(iterations):
            mid = (lo + hi) / 2.0
            centre = e1 - e2
            # Only the interval's end facing 0 decides: the group's lower and the
            # reference's upper limit when d > 0, the other two otherwise.
            l1 = auc_limit(e1, g[i, 1], g[i, 2], mid, dg[i], inner, d <= 0)
            l2 = auc_limit(e2, r[i, 1], r[i, 2], mid, dr[i], inner, d > 0)
            if d > 0:
                excludes = centre - math.sqrt(_sq(e1 - l1) + _sq(l2 - e2)) > 0
            else:
                excludes = centre + math.sqrt(_sq(l1 - e1) + _sq(e2 - l2)) < 0
            if excludes:
                lo = mid
            else:
                hi = mid
        out_lo[i], out_hi[i] = lo, hi
    return out_lo, out_hi


def auroc_bracket(diff: np.ndarray, g: np.ndarray, r: np.ndarray, dg: np.ndarray,
                  dr: np.ndarray, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Bisection bracket on ``z`` of the AUROC difference's inverted test.

    Parameters
    ----------
    diff : ndarray
        Point differences ``auc_group - auc_reference``.
    g, r : ndarray, shape (k, 3)
        Group and reference inputs: AUROC, positives, negatives.
    dg, dr : ndarray
        Design effects of the two sides.
    iterations : int
        Bisection steps on ``z`` in ``[0, 40]`` (``inverted_p_value``'s default).

    Returns
    -------
    tuple of ndarray
        ``(lo, hi)`` after the last step, as ``inverted_p_value``'s own search ends.
    """
    as_f = np.ascontiguousarray
    return _auroc_bracket(as_f(diff, dtype=np.float64), as_f(g, dtype=np.float64),
                          as_f(r, dtype=np.float64), as_f(dg, dtype=np.float64),
                          as_f(dr, dtype=np.float64), iterations, AUC_ITERATIONS)


def chi2_ppf(q: np.ndarray, df: np.ndarray) -> np.ndarray:
    """``scipy.stats.chi2.ppf(q, df)`` (same values) from ``scipy.special.gammaincinv``."""
    q, df = np.broadcast_arrays(np.asarray(q, dtype=np.float64),
                                np.asarray(df, dtype=np.float64))
    good = df > 0
    with np.errstate(invalid="ignore"):
        inner = 2 * gammaincinv(df / 2, q)
    out = np.where(good & (q > 0) & (q < 1), inner, np.nan)
    out = np.where(good & (q == 0), 0.0, out)
    return np.where(good & (q == 1), np.inf, out)


def oe_limits(observed: np.ndarray, expected: np.ndarray, level: np.ndarray,
              deff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``poisson_ratio_limits`` (same values) with :func:`chi2_ppf` (array ``level``)."""
    o, e, d = np.broadcast_arrays(np.asarray(observed, dtype=np.float64),
                                  np.asarray(expected, dtype=np.float64),
                                  np.asarray(deff, dtype=np.float64))
    oe, ee = o / d, np.where(e > 0, e / d, np.nan)
    alpha = 1.0 - level
    with np.errstate(invalid="ignore"):
        lo = np.where(oe > 0, chi2_ppf(alpha / 2, 2 * oe) / 2, 0.0)
        hi = chi2_ppf(1 - alpha / 2, 2 * oe + 2) / 2
    return lo / ee, hi / ee
