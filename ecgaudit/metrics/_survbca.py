"""BCa intervals of the survival audit (``bootstrap_method: bca``).

The same construction as the binary and continuous audits (``docs/intervals.md``): ``z0``
from the share of replicates below the estimate (ties 1/2), the acceleration from a
delete-a-block jackknife over at most 100 random blocks of resampling units (patients with
``patient_column``, else rows; :meth:`ecgaudit.metrics._bootsample.Sampler.jackknife`). With
no more units than blocks each block is one unit: the delete-one-patient jackknife, as in
``scipy.stats.bootstrap(method="BCa")`` (checked in ``tests/test_survival_bca.py``).
Differences use the jackknife of ``group - reference`` on the same blocks, and their
p-value inverts the BCa interval so that the two agree.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._bootci import (
    bca_limits,
    bootstrap_p_value,
    interval_p_value,
    jackknife_acceleration,
    percentile_limits,
)

__all__ = ["BCA_UNDEFINED_REASON", "TAIL_REPLICATES", "diff_p_value", "limits"]

BCA_UNDEFINED_REASON = (
    "BCa interval undefined: every replicate lies on one side of the point estimate "
    "(use bootstrap_method: percentile)"
)
#: As the binary audit: inverted p-values below ``TAIL_REPLICATES / (B + 1)`` use the
#: normal tail with the bootstrap standard error.
TAIL_REPLICATES = 20


def limits(reps: np.ndarray, est: np.ndarray, jack: np.ndarray | None, level: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile (``jack is None``) or BCa limits per column, and where BCa is undefined.

    Parameters
    ----------
    reps : ndarray, shape (B, k)
        Replicates; ``nan`` = degenerate.
    est : ndarray, shape (k,)
        Point estimates.
    jack : ndarray, shape (J, k), optional
        Jackknife estimates (BCa); ``None``: percentile limits.
    level : float
        Confidence level.

    Returns
    -------
    low, high : ndarray
        The limits.
    undefined : ndarray of bool
        BCa is undefined although the estimate and some replicates are finite (every
        replicate on one side of the estimate).
    """
    if jack is None:
        lo, hi = percentile_limits(reps, level)
        return lo, hi, np.zeros(lo.shape, dtype=bool)
    lo, hi = bca_limits(_snap(reps, est), est, jackknife_acceleration(jack), level)
    bad = np.isnan(lo) & np.isfinite(est) & np.any(~np.isnan(reps), axis=0)
    return lo, hi, bad


def diff_p_value(diff: np.ndarray, est: np.ndarray, jack: np.ndarray | None, level: float
                 ) -> np.ndarray:
    """Two-sided bootstrap p-value of ``difference = 0`` per column.

    Percentile mode (``jack is None``) keeps the counting p-value
    (:func:`~ecgaudit.metrics._bootci.bootstrap_p_value`); BCa inverts the BCa interval
    (:func:`~ecgaudit.metrics._bootci.interval_p_value`), as the binary audit does.
    """
    if jack is None:
        return bootstrap_p_value(diff)
    tail = min(TAIL_REPLICATES / (diff.shape[0] + 1.0), (1.0 - level) / 2.0)
    return interval_p_value(_snap(diff, est), est, jackknife_acceleration(jack), point=est,
                            tail=tail)


def _snap(reps: np.ndarray, est: np.ndarray) -> np.ndarray:
    """Count replicates within rounding (1e-12 relative) of the estimate as ties.

    Survival statistics of counts (rates, Harrell's C) often repeat the estimate exactly in
    a replicate; the numpy and compiled engines agree to rounding only, and ``z0`` counts a
    tie as 1/2 but a replicate 1e-16 below as 1, so without this the engines' BCa limits
    could differ. Moving a replicate by at most 1e-12 changes no percentile limit visibly.
    """
    tol = 1e-12 * np.maximum(1.0, np.abs(est))
    with np.errstate(invalid="ignore"):
        near = np.abs(reps - est) <= tol
    return np.where(near, est, reps)
