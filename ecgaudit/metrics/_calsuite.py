"""Calibration suite: ICI, E50, E90, Emax and reliability-curve data.

The smoothed calibration curve is a lowess regression of the label on the predicted
probability without robustness iterations (Austin & Steyerberg 2019, *Stat Med* 38:4051),
implemented here in numpy exactly as Cleveland's algorithm in ``statsmodels``'
``lowess(y, p, frac, it=0, delta=0)``: for every point the ``floor(frac * n)`` nearest
scores, tricube weights on distance / window radius, a weighted local line. Rows are sorted
by score with a stable sort (ties keep input order).

``ICI = mean |smooth(p_i) - p_i|``, ``E50`` its median, ``E90`` its 90th percentile
(numpy's linear rule), ``Emax`` its maximum. For groups larger than ``max_exact`` rows the
smooth is fitted exactly at ``grid`` evenly spaced quantiles of the scores and linearly
interpolated in between (the ``delta`` shortcut ``statsmodels`` recommends for large n);
the curve stored for plotting always uses the grid.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._intervals import wilson_ci

__all__ = ["calibration_suite", "lowess_fit", "reliability_curve"]

_CHUNK = 1 << 21


def lowess_fit(
    x: np.ndarray, y: np.ndarray, frac: float = 2.0 / 3.0, xvals: np.ndarray | None = None
) -> np.ndarray:
    """Lowess (local linear, tricube, no robustness iterations) of ``y`` on ``x``.

    Parameters
    ----------
    x : ndarray
        Abscissae, sorted non-decreasing.
    y : ndarray
        Ordinates in the same order.
    frac : float
        Share of the points in every local window.
    xvals : ndarray, optional
        Sorted points at which to evaluate (default: ``x`` itself).

    Returns
    -------
    ndarray
        Smoothed values at ``xvals`` (``nan`` where a window has fewer than two points of
        positive weight and ``xvals`` was given; ``y`` itself at such a data point).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = x.size
    given = xvals is not None
    xv = x if xvals is None else np.asarray(xvals, dtype=np.float64)
    k = min(max(int(frac * n + 1e-10), 2), n)
    mids = (x[: n - k] + x[k:]) / 2.0
    left = np.searchsorted(mids, xv, side="left")
    out = np.empty(xv.size)
    step = max(1, _CHUNK // max(k, 1))
    offsets = np.arange(k)
    for s in range(0, xv.size, step):
        lo = left[s: s + step]
        val = xv[s: s + step, None]
        idx = lo[:, None] + offsets
        xw, yw = x[idx], y[idx]
        radius = np.maximum(val[:, 0] - xw[:, 0], xw[:, -1] - val[:, 0])[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.abs(xw - val) / radius
        w = (1.0 - d**3) ** 3
        ok = np.sum(w > 1e-12, axis=1) >= 2
        w = w / np.sum(w, axis=1, keepdims=True)
        xbar = np.sum(w * xw, axis=1, keepdims=True)
        sq = np.maximum(np.sum(w * (xw - xbar) ** 2, axis=1, keepdims=True), 1e-12)
        fit = np.sum(w * (1.0 + (val - xbar) * (xw - xbar) / sq) * yw, axis=1)
        fallback = np.full(fit.shape, np.nan) if given else y[s: s + step]
        out[s: s + step] = np.where(ok, fit, fallback)
    return out


def _smooth_at_points(p: np.ndarray, y: np.ndarray, frac: float, max_exact: int,
                      grid: int) -> np.ndarray:
    """Smoothed observed rate at every sorted score."""
    if p.size <= max_exact:
        return lowess_fit(p, y, frac)
    xg = np.unique(np.quantile(p, np.linspace(0.0, 1.0, grid)))
    return np.interp(p, xg, lowess_fit(p, y, frac, xg))


def calibration_suite(
    y: np.ndarray, p: np.ndarray, *, frac: float = 2.0 / 3.0, max_exact: int = 5000,
    grid: int = 400,
) -> dict[str, float]:
    """ICI, E50, E90 and Emax of one group.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels.
    p : ndarray of float
        Predicted probabilities.
    frac : float
        Lowess span.
    max_exact : int
        Largest group fitted at every point; larger groups use a ``grid``-point fit.
    grid : int
        Number of quantile grid points for large groups.

    Returns
    -------
    dict
        ``{"ici", "e50", "e90", "emax"}``; all ``nan`` for fewer than 3 rows.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if p.size < 3:
        return {k: float("nan") for k in ("ici", "e50", "e90", "emax")}
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order]
    err = np.abs(_smooth_at_points(ps, ys, frac, max_exact, grid) - ps)
    return {
        "ici": float(np.mean(err)),
        "e50": float(np.median(err)),
        "e90": float(np.quantile(err, 0.9)),
        "emax": float(np.max(err)),
    }


def reliability_curve(
    y: np.ndarray, p: np.ndarray, n_bins: int = 10, *, level: float = 0.95,
    frac: float = 2.0 / 3.0, points: int = 50,
) -> dict[str, list[float]]:
    """Reliability-diagram data: equal-mass bins with Wilson CIs plus the lowess curve.

    Bins are cut as for ECE (stable sort by score, ``numpy.array_split``).

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels.
    p : ndarray of float
        Predicted probabilities.
    n_bins : int
        Number of equal-mass bins.
    level : float
        Confidence level of the Wilson interval of each bin's observed rate.
    frac : float
        Lowess span of the smoothed curve.
    points : int
        Number of points of the smoothed curve (quantiles of the scores).

    Returns
    -------
    dict of list
        ``bin_lower, bin_upper, mean_predicted, observed, observed_ci_low,
        observed_ci_high, n`` (one entry per non-empty bin) and ``smooth_p, smooth_observed``.
    """
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    out: dict[str, list[float]] = {k: [] for k in (
        "bin_lower", "bin_upper", "mean_predicted", "observed", "observed_ci_low",
        "observed_ci_high", "n", "smooth_p", "smooth_observed")}
    for idx in np.array_split(order, n_bins):
        if idx.size == 0:
            continue
        k = int(y[idx].sum())
        lo, hi = wilson_ci(k, int(idx.size), level)
        for key, val in (("bin_lower", p[idx].min()), ("bin_upper", p[idx].max()),
                         ("mean_predicted", p[idx].mean()), ("observed", k / idx.size),
                         ("observed_ci_low", lo), ("observed_ci_high", hi), ("n", idx.size)):
            out[key].append(float(val))
    if p.size >= 3:
        ps, ys = p[order], y[order].astype(np.float64)
        xg = np.unique(np.quantile(ps, np.linspace(0.0, 1.0, points)))
        fit = lowess_fit(ps, ys, frac, xg)
        out["smooth_p"] = [float(v) for v in xg]
        out["smooth_observed"] = [float(v) for v in fit]
    return out
