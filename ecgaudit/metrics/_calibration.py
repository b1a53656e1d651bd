"""Calibration metrics: O/E ratio, logistic recalibration slope/intercept, ECE.

Score clipping policy: real model outputs saturate at exactly 0 or 1 (float32), whose
logits are infinite. :func:`calibration_logit` gives the covariate of the recalibration fit:

* ``clip = 0`` (default): only *saturated* scores are moved: an exact 0 to
  ``min(1e-6, smallest positive score)`` and an exact 1 to ``max(1 - 1e-6, largest score
  below 1)`` (so the order of the scores is kept). Unsaturated scores keep their logits
  exactly, and the fit equals ``statsmodels`` ``Logit(y, [1, logit(p)])`` / R
  ``rms::val.prob`` on them.
* ``clip > 0``: every score is clipped to ``[clip, 1 - clip]`` (the pre-0.2 behaviour).

The setting is part of the resolved config recorded in every result.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.special import logit

from ecgaudit.metrics._compile import plain
from ecgaudit.metrics._ecebins import edge
from ecgaudit.metrics._newton import fit_weighted

__all__ = ["REASON_EQUAL", "REASON_NO_CONVERGENCE", "REASON_SEPARATED", "SATURATED_CLIP",
           "LogisticFit", "calibration_logit", "ece", "logistic_recalibration",
           "no_fit_reason", "oe_ratio"]

#: Largest distance from 0 / 1 given to a saturated score with ``clip = 0``.
SATURATED_CLIP = 1e-6


def calibration_logit(p: np.ndarray, clip: float = 0.0) -> np.ndarray:
    """Logit covariate of the recalibration fit (see the module docstring).

    Parameters
    ----------
    p : ndarray of float
        Scores in [0, 1] (all rows of the task, so the replacement of saturated scores is
        the same in every group and replicate).
    clip : float
        0: move only exact 0 / 1; > 0: clip every score to ``[clip, 1 - clip]``.

    Returns
    -------
    ndarray of float64
        Finite logits.
    """
    p = np.asarray(p, dtype=np.float64)
    if clip > 0:
        return logit(np.clip(p, clip, 1.0 - clip))
    lo = p[p > 0.0].min(initial=SATURATED_CLIP)
    hi = p[p < 1.0].max(initial=1.0 - SATURATED_CLIP)
    lo, hi = min(lo, SATURATED_CLIP), max(hi, 1.0 - SATURATED_CLIP)
    return logit(np.where(p <= 0.0, lo, np.where(p >= 1.0, hi, p)))


def oe_ratio(y: np.ndarray, p: np.ndarray) -> float:
    """Calibration-in-the-large as observed / expected events, ``sum(y) / sum(p)``.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels.
    p : ndarray of float
        Predicted probabilities.

    Returns
    -------
    float
        O/E ratio, ``nan`` if no events are expected (``sum(p) == 0``) or input is empty.
    """
    expected = float(np.sum(p))
    if np.size(y) == 0 or expected <= 0.0:
        return float("nan")
    return float(np.sum(y)) / expected


#: Why a recalibration fit of a group with both classes is undefined (the ``reason`` column).
REASON_EQUAL = "all scores are equal"
REASON_SEPARATED = "scores separate the classes perfectly: no finite recalibration fit"
REASON_NO_CONVERGENCE = "logistic recalibration did not converge"


def no_fit_reason(y: np.ndarray, x: np.ndarray, w: np.ndarray | None = None) -> str:
    """Say why the recalibration fit has no finite maximum-likelihood estimate a priori.

    The checks :func:`logistic_recalibration` makes before fitting; the engines of the
    audit (``metrics/_points.py``) use them to give an undefined fit the same reason.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels (both classes present).
    x : ndarray of float
        The fit's covariate (:func:`calibration_logit` of the scores).
    w : ndarray, optional
        Non-negative frequency weights; rows of weight 0 do not count for separation.

    Returns
    -------
    str
        :data:`REASON_EQUAL`, :data:`REASON_SEPARATED`, or ``""`` when neither holds.
    """
    y = np.asarray(y)
    x = np.asarray(x, dtype=np.float64)
    drawn = np.ones(x.shape, dtype=bool) if w is None else np.asarray(w) > 0
    if np.ptp(x) == 0.0:
        return REASON_EQUAL
    pos, neg = x[(y == 1) & drawn], x[(y == 0) & drawn]
    if pos.min() > neg.max() or neg.min() > pos.max():
        return REASON_SEPARATED
    return ""


@dataclass(frozen=True)
class LogisticFit:
    """Result of the recalibration fit ``logit P(y=1) = intercept + slope * logit(p)``.

    ``converged`` is False when Newton's method did not converge (e.g. perfect separation);
    then intercept and slope are ``nan``.
    """

    intercept: float
    slope: float
    converged: bool
    reason: str = ""


def logistic_recalibration(
    y: np.ndarray, p: np.ndarray, clip: float = 0.0, weights: np.ndarray | None = None
) -> LogisticFit:
    """Fit the calibration intercept and slope jointly by Newton-Raphson (IRLS).

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels.
    p : ndarray of float
        Predicted probabilities.
    clip : float
        0 (default): move only saturated scores; > 0: clip to ``[clip, 1 - clip]``
        (:func:`calibration_logit`).
    weights : ndarray, optional
        Non-negative frequency weights (used by the bootstrap).

    Returns
    -------
    LogisticFit
        Maximum-likelihood intercept and slope (equal to an unpenalised
        ``statsmodels.Logit`` fit), by the one Newton fit of every engine
        (:func:`ecgaudit.metrics._newton.fit_weighted`, each row a cell).
    """
    y = np.asarray(y, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    npos = float(np.sum(w * y))
    nneg = float(np.sum(w * (1 - y)))
    if npos == 0 or nneg == 0:
        return LogisticFit(float("nan"), float("nan"), False, "needs both classes")
    x = calibration_logit(p, clip)
    degenerate = no_fit_reason(y, x, w)
    if degenerate:
        return LogisticFit(float("nan"), float("nan"), False, degenerate)
    prev = npos / (npos + nneg)
    keep = w > 0
    wk = w[keep]
    yk = y[keep]
    a, b = fit_weighted(np.ascontiguousarray(x[keep]), wk * (1.0 - yk), wk * yk,
                        float(np.log(prev / (1 - prev))), 0.0)
    if np.isfinite(a) and np.isfinite(b):
        return LogisticFit(float(a), float(b), True)
    return LogisticFit(float("nan"), float("nan"), False, REASON_NO_CONVERGENCE)


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Compute the expected calibration error over equal-mass bins.

    Rows are sorted by score, tied scores negatives first (so the result does not depend on
    row order), and split into
    ``n_bins`` consecutive bins whose sizes differ by at most one (``numpy.array_split``);
    ``ECE = sum_b (n_b / n) |mean(y_b) - mean(p_b)|``. With fewer rows than bins, each row
    is its own bin.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels.
    p : ndarray of float
        Predicted probabilities.
    n_bins : int
        Number of equal-mass bins.

    Returns
    -------
    float
        ECE, ``nan`` for an empty input.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    n = y.size
    if n == 0:
        return float("nan")
    order = np.lexsort((y, p))
    bins = min(n_bins, n)
    ends = plain(edge)(np.arange(bins + 1), *divmod(n, bins))  # numpy.array_split's cuts
    total = 0.0
    for lo, hi in itertools.pairwise(ends):
        idx = order[lo:hi]
        total += idx.size * abs(float(np.mean(y[idx])) - float(np.mean(p[idx])))
    return total / n
