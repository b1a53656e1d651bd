"""Binned agreement curves of a continuous task (aggregates only, for the report).

* Bland-Altman: rows binned (equal mass) by the mean of predicted and measured; per bin the
  mean of that average, the mean difference (predicted - measured) and its SD.
* Calibration: rows binned by the predicted value; per bin the mean predicted and mean
  measured value with a t interval.

No individual value leaves this module: every bin holds at least ``min_rows`` rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import t as t_dist

__all__ = ["agreement_curves"]


def agreement_curves(measured: np.ndarray, predicted: np.ndarray, by_mean: np.ndarray,
                     by_predicted: np.ndarray, *, max_bins: int = 10, min_rows: int = 20,
                     level: float = 0.95) -> dict[str, Any] | None:
    """Return binned Bland-Altman and calibration curves, or None for too few rows.

    Parameters
    ----------
    measured, predicted : ndarray of float
        Values of every row.
    by_mean, by_predicted : ndarray of int
        The group's row indices sorted by ``measured + predicted``, resp. by ``predicted``
        (a cohort-wide stable sort restricted to the group keeps its order).
    max_bins : int
        Most bins.
    min_rows : int
        Fewest rows per bin (the number of bins is ``min(max_bins, n // min_rows)``).
    level : float
        Confidence level of the calibration bins' intervals.

    Returns
    -------
    dict or None
        ``{"ba": {"mean", "diff", "sd"}, "cal": {"pred", "meas", "low", "high"}}`` (lists),
        or None when fewer than two bins fit.
    """
    y = np.asarray(measured, dtype=np.float64)
    x = np.asarray(predicted, dtype=np.float64)
    n_bins = min(max_bins, by_mean.size // min_rows)
    if n_bins < 2:
        return None
    d, avg = x - y, (x + y) / 2.0
    ba: dict[str, list[float]] = {"mean": [], "diff": [], "sd": []}
    for b in np.array_split(by_mean, n_bins):
        ba["mean"].append(float(avg[b].mean()))
        ba["diff"].append(float(d[b].mean()))
        ba["sd"].append(float(d[b].std(ddof=1)))
    cal: dict[str, list[float]] = {"pred": [], "meas": [], "low": [], "high": []}
    for b in np.array_split(by_predicted, n_bins):
        m = float(y[b].mean())
        half = float(t_dist.ppf(0.5 + level / 2, b.size - 1) * y[b].std(ddof=1)
                     / np.sqrt(b.size))
        cal["pred"].append(float(x[b].mean()))
        cal["meas"].append(m)
        cal["low"].append(m - half)
        cal["high"].append(m + half)
    return {"ba": ba, "cal": cal}
