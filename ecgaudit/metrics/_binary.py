"""Discrimination metrics and threshold counts for one binary task in one group.

All functions take ``y`` (0/1 labels) and ``p`` (scores) as 1-D arrays and return ``nan``
when a metric is undefined (e.g. AUROC with a single class): never 0.0 or 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ecgaudit.metrics._suffstats import auroc_value

__all__ = ["ConfusionCounts", "auprc", "auroc", "brier", "confusion_counts"]


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties counted as 1/2).

    Parameters
    ----------
    y : ndarray of {0, 1}
        True labels.
    p : ndarray of float
        Scores; higher means more likely positive.

    Returns
    -------
    float
        AUROC, or ``nan`` if ``y`` has a single class.
    """
    y = np.asarray(y)
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)  # midranks handle ties exactly
    return u2_auroc(float(np.sum(ranks[y == 1])), n_pos, n_neg)


def u2_auroc(rank_sum: float, n_pos: int, n_neg: int) -> float:
    """AUROC of a group from its positives' midrank sum, by the engines' one formula.

    ``2U = 2 rank_sum - n_pos (n_pos + 1)`` (twice the Mann-Whitney U) goes through
    :func:`ecgaudit.metrics._suffstats.auroc_value`, the formula every engine's
    :func:`~ecgaudit.metrics._suffstats.assemble` uses.
    """
    u2 = 2.0 * rank_sum - n_pos * (n_pos + 1)
    return float(auroc_value(np.float64(u2), np.float64(n_pos), np.float64(n_neg)))


def auprc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision: step-wise area under the precision-recall curve.

    ``AP = sum_k (R_k - R_{k-1}) P_k`` over distinct score thresholds in decreasing order,
    the definition used by scikit-learn's ``average_precision_score`` (no interpolation).

    Parameters
    ----------
    y : ndarray of {0, 1}
        True labels.
    p : ndarray of float
        Scores.

    Returns
    -------
    float
        Average precision, or ``nan`` if ``y`` has a single class.
    """
    y = np.asarray(y)
    n_pos = int(np.count_nonzero(y))
    if n_pos == 0 or n_pos == y.size:
        return float("nan")
    order = np.argsort(-np.asarray(p, dtype=float), kind="mergesort")
    ps = np.asarray(p, dtype=float)[order]
    ys = y[order].astype(float)
    last = np.r_[np.flatnonzero(np.diff(ps)), ps.size - 1]  # last index of each tie block
    tps = np.cumsum(ys)[last]
    fps = (last + 1) - tps
    precision = tps / (tps + fps)
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Brier score: mean squared difference between score and label.

    Parameters
    ----------
    y : ndarray of {0, 1}
        True labels.
    p : ndarray of float
        Predicted probabilities.

    Returns
    -------
    float
        Brier score, or ``nan`` for an empty input.
    """
    y = np.asarray(y, dtype=float)
    if y.size == 0:
        return float("nan")
    return float(np.mean((np.asarray(p, dtype=float) - y) ** 2))


@dataclass(frozen=True)
class ConfusionCounts:
    """Confusion-matrix counts at a frozen threshold (flag = score >= threshold)."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        """Number of rows."""
        return self.tp + self.fp + self.tn + self.fn

    def rate(self, metric: str) -> tuple[int, int]:
        """Return ``(numerator, denominator)`` of a threshold rate.

        Parameters
        ----------
        metric : str
            One of ``sensitivity, specificity, ppv, npv, fnr, fpr, flag_rate``.

        Returns
        -------
        tuple of int
            The count and the count it is a proportion of.
        """
        tp, fp, tn, fn = self.tp, self.fp, self.tn, self.fn
        table = {
            "sensitivity": (tp, tp + fn),
            "specificity": (tn, tn + fp),
            "ppv": (tp, tp + fp),
            "npv": (tn, tn + fn),
            "fnr": (fn, tp + fn),
            "fpr": (fp, tn + fp),
            "flag_rate": (tp + fp, self.n),
        }
        return table[metric]


def confusion_counts(y: np.ndarray, p: np.ndarray, threshold: float) -> ConfusionCounts:
    """Count TP/FP/TN/FN with ``flag = p >= threshold``.

    Parameters
    ----------
    y : ndarray of {0, 1}
        True labels.
    p : ndarray of float
        Scores.
    threshold : float
        Operating threshold.

    Returns
    -------
    ConfusionCounts
    """
    y = np.asarray(y).astype(bool)
    flag = np.asarray(p, dtype=float) >= threshold
    tp = int(np.count_nonzero(flag & y))
    fp = int(np.count_nonzero(flag & ~y))
    fn = int(np.count_nonzero(~flag & y))
    tn = int(y.size - tp - fp - fn)
    return ConfusionCounts(tp=tp, fp=fp, tn=tn, fn=fn)
