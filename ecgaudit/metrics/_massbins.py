"""Equal-mass reliability bins with Wilson intervals (the fine-tuning before/after page)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ecgaudit.metrics._intervals import wilson_ci

__all__ = ["calibration_bins"]


def calibration_bins(scores: ArrayLike, labels: ArrayLike, *, min_cell: int = 11,
                     max_bins: int = 10) -> list[dict[str, float]]:
    """Equal-mass reliability bins with Wilson intervals; every bin holds >= ``min_cell`` rows.

    Parameters
    ----------
    scores, labels : array_like
        Probabilities and 0/1 labels.
    min_cell : int
        Minimum records per bin (small-cell rule).
    max_bins : int
        Upper limit on the number of bins.

    Returns
    -------
    list of dict
        ``p_mean``, ``y_mean``, ``y_low``, ``y_high``, ``n`` per bin (empty if too few rows).
    """
    p = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float)
    k = min(max_bins, len(p) // max(min_cell, 1))
    if k < 1:
        return []
    order = np.argsort(p, kind="stable")
    out = []
    for idx in np.array_split(order, k):
        lo, hi = wilson_ci(int(y[idx].sum()), len(idx))
        out.append({"p_mean": float(p[idx].mean()), "y_mean": float(y[idx].mean()),
                    "y_low": lo, "y_high": hi, "n": len(idx)})
    return out
