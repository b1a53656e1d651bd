"""Calibration suite: ICI, E50, E90, Emax and reliability-curve data.

The smoothed calibration curve is a lowess regression of the label on the predicted
probability without robustness iterations (Austin & Steyerberg 2019, *Stat Med* 38:4051),
implemented here in numpy exactly as Cleveland's algorithm in ``statsmodels``'
``lowess(y, p, frac, it=0, delta=0)``: for every point the ``floor(frac * n)`` nearest
scores, tricube weights on distance / window radius, a weighted local line. Rows are sorted
by score with a stable sort (ties keep input order).

``ICI = mean |smooth(p_i) - p_i|``, ``E50`` its median, ``E90`` its 90th percentile
(numpy's linear rule), ``Emax`` its maximum. For groups larger than ``max_exact`` rows the
smooth is fitted at ``grid`` evenly spaced quantiles of the scores and linearly
interpolated in between (the ``delta`` shortcut ``statsmodels`` recommends for large n);
the curve stored for plotting always uses its ``points`` quantiles.

Binned grid fit (groups larger than ``max_exact``)
--------------------------------------------------
Fitting a grid point from its raw window costs ``frac * n`` operations (about 2.7e8 for
400 points at n = 1e6), so large groups fit the grid from binned sufficient statistics.
The sorted scores are cut into at most ``lowess_bins`` bins (default 4096; every row is
its own bin when there are no more rows than that): half of the cuts at equal mass and
half at equal score width, so no bin holds more than ``2 n / lowess_bins`` rows or spans
more than ``2 / lowess_bins`` of the score range. A bin keeps its row count, score sum and
label sum, and sits at its mean score. The window rule is unchanged: the
``floor(frac * n)`` nearest rows and the radius come from the raw sorted scores; bins
wholly inside the window enter with weight ``tricube * count``; the (at most two) bins cut
by the window's ends enter with the count, mean score and label sum of their rows inside
it (from cumulative sums). The one approximation is that the rows of a bin share the
tricube weight and the lever of their mean score. Against the exact grid fit
(``lowess_bins=None``, kept for checking) the curve, ICI, E50, E90 and Emax differed by at
most 4e-6 in absolute value on 200 000-row miscalibrated groups with uniform and with
skewed scores, and by at most 7e-7 on a 1e6-row benchmark group (``tests/test_calsuite.py``
asserts 1e-4). Groups of at most ``max_exact`` rows are fitted exactly at every point.
The stable sort itself is computed in two cheap passes
(see ``ecgaudit.metrics._order.stable_order``).
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics import _lowesskernels as _kern
from ecgaudit.metrics._compile import HAVE_NUMBA
from ecgaudit.metrics._intervals import wilson_ci
from ecgaudit.metrics._order import stable_order
from ecgaudit.metrics._quantiles import median_and_quantile, sorted_quantile
from ecgaudit.metrics._suitekernels import interp_abs_error

__all__ = ["binned_lowess_fit", "calibration_suite", "lowess_fit", "reliability_curve"]

_CHUNK = 1 << 16  # elements per block of the exact fit: stays in the CPU cache
#: Grid points per block of the binned fit: a block's (points x bins) temporaries stay in the
#: CPU cache. A multiple of 8, so that the BLAS matrix-vector products take the same kernel
#: path for every row as one call over all points (results are bit-for-bit the same).
_BLOCK_ROWS = 32
#: Default number of bins of the binned grid fit (see the module docstring).
LOWESS_BINS = 4096
#: Binned grid fits with the compiled kernel of ``_lowesskernels`` (numba) unless told
#: otherwise; False runs the numpy reference (same arithmetic, sums in another order: last
#: bits differ). Exact-window fits use numpy unless ``compiled=True`` (see ``lowess_fit``).
COMPILED = HAVE_NUMBA


def _sorted(y: np.ndarray, p: np.ndarray, assume_sorted: bool
            ) -> tuple[np.ndarray, np.ndarray]:
    """Scores in stable ascending order and the labels alongside."""
    if assume_sorted:
        return p, y
    order = stable_order(p)
    return p[order], y[order]


def lowess_fit(
    x: np.ndarray, y: np.ndarray, frac: float = 2.0 / 3.0, xvals: np.ndarray | None = None,
    compiled: bool = False,
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
    compiled : bool
        True: the compiled kernel (``_lowesskernels.exact_lowess``: same arithmetic, numpy's
        pairwise sums; agrees to 1e-12). Default False: the numpy code below, which
        is faster here because numpy's ``**`` is vectorised (SIMD ``pow``) and the kernel's
        per-element ``pow`` is not.

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
    if compiled:
        return _tied_windows(x, y, xv, k, _kern.exact_lowess(x, y, xv, k, given))
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
        with np.errstate(divide="ignore", invalid="ignore"):  # radius 0: _tied_windows
            d = np.abs(xw - val) / radius
            w = (1.0 - d**3) ** 3
            ok = np.sum(w > 1e-12, axis=1) >= 2
            w = w / np.sum(w, axis=1, keepdims=True)
            xbar = np.sum(w * xw, axis=1, keepdims=True)
            sq = np.maximum(np.sum(w * (xw - xbar) ** 2, axis=1, keepdims=True), 1e-12)
            fit = np.sum(w * (1.0 + (val - xbar) * (xw - xbar) / sq) * yw, axis=1)
        fallback = np.full(fit.shape, np.nan) if given else y[s: s + step]
        out[s: s + step] = np.where(ok, fit, fallback)
    return _tied_windows(x, y, xv, k, out)


def _tied_windows(x: np.ndarray, y: np.ndarray, xv: np.ndarray, k: int,
                  out: np.ndarray) -> np.ndarray:
    """Replace the fit where the window has radius 0 by the mean label of the tied scores.

    When at least ``k`` rows share the score ``v``, the window is a block of ties: every
    row at distance 0 gets weight 1 and the local line has no slope, so the fit is the mean
    label of *all* rows scored ``v`` (as R's ``lowess``, which extends the window over ties;
    ``statsmodels`` returns 0 there). Constant scores then give a smooth equal to the
    observed rate, and ICI = ``|mean(y) - p|``.
    """
    lo = np.searchsorted(x, xv, side="left")
    hi = np.searchsorted(x, xv, side="right")
    tied = (hi - lo) >= k
    if not tied.any():
        return out
    cy = np.concatenate(([0.0], np.cumsum(y)))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (cy[hi] - cy[lo]) / (hi - lo)
    return np.where(tied, mean, out)


def _bin_edges(x: np.ndarray, bins: int) -> np.ndarray:
    """Row offsets of the bins of sorted ``x``: equal-mass and equal-width cuts merged."""
    n = x.size
    if n <= bins:
        return np.arange(n + 1, dtype=np.int64)
    half = max(bins // 2, 1)
    mass = (np.arange(half + 1, dtype=np.int64) * n) // half
    width = np.searchsorted(x, np.linspace(x[0], x[-1], half + 1)[1:-1], side="left")
    if HAVE_NUMBA:  # both sorted: one merge gives np.union1d's result
        return _kern.merge_unique(mass, width.astype(np.int64))
    return np.union1d(mass, width.astype(np.int64))


def _prefix_sum(v: np.ndarray) -> np.ndarray:
    """``concatenate(([0], cumsum(v)))`` written into one array (large groups: no copies)."""
    out = np.empty(v.size + 1)
    out[0] = 0.0
    np.cumsum(v, out=out[1:])
    return out


def _tricube(loc: np.ndarray, val: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Tricube weight ``(1 - d**3)**3`` of distance ``d = |loc - val| / radius``, d <= 1."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(loc - val)
        d /= radius
    np.minimum(d, 1.0, out=d)
    d *= d * d
    np.subtract(1.0, d, out=d)
    return d * d * d


def binned_lowess_fit(
    x: np.ndarray, y: np.ndarray, frac: float, xvals: np.ndarray, bins: int = LOWESS_BINS,
    compiled: bool | None = None,
) -> np.ndarray:
    """Lowess of ``y`` on ``x`` at ``xvals`` from binned sufficient statistics.

    Same window rule, weights and local line as :func:`lowess_fit`, with the rows of a bin
    sharing the tricube weight and the position of their mean (module docstring).

    Parameters
    ----------
    x : ndarray
        Abscissae, sorted non-decreasing.
    y : ndarray
        Ordinates in the same order.
    frac : float
        Share of the points in every local window.
    xvals : ndarray
        Sorted points at which to evaluate.
    bins : int
        Largest number of bins.
    compiled : bool, optional
        Use the compiled kernel (``_lowesskernels.binned_lowess``: only the bins inside
        each window, sums in another order); False runs the numpy reference below; None:
        ``COMPILED``.

    Returns
    -------
    ndarray
        Smoothed values at ``xvals`` (``nan`` where a window has fewer than two rows of
        positive weight).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    xv = np.asarray(xvals, dtype=np.float64)
    n = x.size
    k = min(max(int(frac * n + 1e-10), 2), n)
    if COMPILED if compiled is None else compiled:
        fit = _kern.binned_lowess(x, y, xv, k, _bin_edges(x, bins))
        return _tied_windows(x, y, xv, k, fit)
    left = np.searchsorted((x[: n - k] + x[k:]) / 2.0, xv, side="left")
    right = left + k
    radius = np.maximum(xv - x[left], x[right - 1] - xv)
    edges = _bin_edges(x, bins)
    sizes = np.diff(edges)
    cnt = sizes.astype(np.float64)
    mx = np.add.reduceat(x, edges[:-1]) / cnt
    sy = np.add.reduceat(y, edges[:-1])
    # Bins cut by the window's ends: first (bl) and last (br) bin touching [left, right),
    # and the rows [lo, hi) of each inside the window (an empty second piece if bl == br).
    bl = np.searchsorted(edges, left, side="right") - 1
    br = np.searchsorted(edges, right - 1, side="right") - 1
    lo = np.stack([left, np.where(br > bl, np.maximum(edges[br], left), right)], axis=1)
    hi = np.stack([np.minimum(edges[bl + 1], right), right], axis=1)
    pc = (hi - lo).astype(np.float64)
    # Mean score of a piece: its bin's mean plus the mean deviation from it, from prefix sums
    # of deviations (small numbers: no cancellation however large the group).
    dev = _prefix_sum(np.subtract(x, np.repeat(mx, sizes)))
    with np.errstate(divide="ignore", invalid="ignore"):
        px = np.where(pc > 0, mx[np.stack([bl, br], axis=1)] + (dev[hi] - dev[lo]) / pc,
                      xv[:, None])
    cy = _prefix_sum(y)
    py = cy[hi] - cy[lo]
    ids = np.arange(cnt.size)
    out = np.empty(xv.size)
    step = _BLOCK_ROWS
    for s in range(0, xv.size, step):
        sl = slice(s, s + step)
        val, rad, ppx, ppc, ppy = xv[sl, None], radius[sl, None], px[sl], pc[sl], py[sl]
        # Tricube of the whole bins strictly between the two cut ones (rows x bins) ...
        tf = _tricube(mx, val, rad)
        tf *= (ids > bl[sl, None]) & (ids < br[sl, None])
        # ... and of the rows of the two cut bins that lie inside the window.
        tp = _tricube(ppx, val, rad)
        wp = tp * ppc
        total = tf @ cnt + wp.sum(axis=1)
        ok = (tf > 1e-12) @ cnt + np.where(tp > 1e-12, ppc, 0.0).sum(axis=1) >= 2
        with np.errstate(divide="ignore", invalid="ignore"):
            xbar = (tf @ (cnt * mx) + (wp * ppx).sum(axis=1)) / total
            df, dp = mx - xbar[:, None], ppx - xbar[:, None]
            tdf = tf * df
            sq = np.maximum(((tdf * df) @ cnt + (wp * dp * dp).sum(axis=1)) / total, 1e-12)
            sum_y = tf @ sy + (tp * ppy).sum(axis=1)
            sum_xy = tdf @ sy + (tp * dp * ppy).sum(axis=1)
            fit = (sum_y + (xv[sl] - xbar) * sum_xy / sq) / total
        out[sl] = np.where(ok, fit, np.nan)
    return _tied_windows(x, y, xv, k, out)


def _grid_fit(x: np.ndarray, y: np.ndarray, frac: float, xvals: np.ndarray,
              bins: int | None) -> np.ndarray:
    """Lowess at ``xvals``: exact raw windows when ``bins`` is None, else binned."""
    if bins is None:
        return lowess_fit(x, y, frac, xvals)
    return binned_lowess_fit(x, y, frac, xvals, bins)


def _smooth_at_points(p: np.ndarray, y: np.ndarray, frac: float, max_exact: int,
                      grid: int, bins: int | None) -> np.ndarray:
    """Smoothed observed rate at every sorted score."""
    if p.size <= max_exact:
        return lowess_fit(p, y, frac)
    xg = np.unique(sorted_quantile(p, np.linspace(0.0, 1.0, grid)))
    return np.interp(p, xg, _grid_fit(p, y, frac, xg, bins))


def _abs_error(p: np.ndarray, y: np.ndarray, frac: float, max_exact: int, grid: int,
               bins: int | None) -> tuple[np.ndarray, float]:
    """``|smooth(p) - p|`` at every sorted score, and its maximum.

    Grid fits interpolate, subtract and take the maximum in one compiled pass
    (``_suitekernels.interp_abs_error``: ``np.interp``'s arithmetic, identical values).
    """
    if p.size > max_exact and COMPILED:
        xg = np.unique(sorted_quantile(p, np.linspace(0.0, 1.0, grid)))
        if xg.size >= 2:
            err = np.empty(p.size)
            top = interp_abs_error(p, xg, _grid_fit(p, y, frac, xg, bins), err)
            return err, float(top)
    err = _smooth_at_points(p, y, frac, max_exact, grid, bins)
    err -= p  # in place: no copies of a large group's rows
    np.abs(err, out=err)
    return err, float(np.max(err))


def calibration_suite(
    y: np.ndarray, p: np.ndarray, *, frac: float = 2.0 / 3.0, max_exact: int = 5000,
    grid: int = 400, lowess_bins: int | None = LOWESS_BINS, assume_sorted: bool = False,
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
    lowess_bins : int or None
        Bins of the grid fit of large groups; None fits every grid point from its raw
        window (exact, about ``grid * frac * n`` operations).
    assume_sorted : bool
        ``p`` is already in stable ascending order (as ``numpy.argsort(p, kind="stable")``
        would put it, ``y`` alongside); skips the sort.

    Returns
    -------
    dict
        ``{"ici", "e50", "e90", "emax"}``; all ``nan`` for fewer than 3 rows.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if p.size < 3:
        return {k: float("nan") for k in ("ici", "e50", "e90", "emax")}
    ps, ys = _sorted(y, p, assume_sorted)
    err, emax = _abs_error(ps, ys, frac, max_exact, grid, lowess_bins)
    ici = float(np.mean(err))
    if np.isnan(ici):  # a window without two weighted rows: numpy's nan rules
        return {"ici": ici, "e50": float(np.median(err)), "e90": float(np.quantile(err, 0.9)),
                "emax": emax}
    e50, e90 = median_and_quantile(err, 0.9)  # as np.median, np.quantile; reorders err
    return {"ici": ici, "e50": e50, "e90": e90, "emax": emax}


def reliability_curve(
    y: np.ndarray, p: np.ndarray, n_bins: int = 10, *, level: float = 0.95,
    frac: float = 2.0 / 3.0, points: int = 50, max_exact: int = 5000,
    lowess_bins: int | None = LOWESS_BINS, assume_sorted: bool = False,
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
    max_exact : int
        Largest group whose curve is fitted from raw windows; larger groups use the
        binned fit.
    lowess_bins : int or None
        Bins of the binned fit; None fits from raw windows whatever the size.
    assume_sorted : bool
        ``p`` is already in stable ascending order (``y`` alongside); skips the sort.

    Returns
    -------
    dict of list
        ``bin_lower, bin_upper, mean_predicted, observed, observed_ci_low,
        observed_ci_high, n`` (one entry per non-empty bin) and ``smooth_p, smooth_observed``.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "biu":  # integer labels are summed exactly as they are
        y = y.astype(np.int64)
    p = np.asarray(p, dtype=np.float64)
    ps, ys = _sorted(y, p, assume_sorted)
    out: dict[str, list[float]] = {k: [] for k in (
        "bin_lower", "bin_upper", "mean_predicted", "observed", "observed_ci_low",
        "observed_ci_high", "n", "smooth_p", "smooth_observed")}
    size, extra = divmod(p.size, n_bins)
    stops = np.cumsum([size + 1] * extra + [size] * (n_bins - extra))
    for start, stop in zip(np.concatenate(([0], stops[:-1])), stops):
        if stop == start:
            continue
        pb, m = ps[start:stop], int(stop - start)
        k = int(ys[start:stop].sum())
        lo, hi = wilson_ci(k, m, level)
        for key, val in (("bin_lower", pb.min()), ("bin_upper", pb.max()),
                         ("mean_predicted", pb.mean()), ("observed", k / m),
                         ("observed_ci_low", lo), ("observed_ci_high", hi), ("n", m)):
            out[key].append(float(val))
    if p.size >= 3:
        xg = np.unique(sorted_quantile(ps, np.linspace(0.0, 1.0, points)))
        bins = None if p.size <= max_exact else lowess_bins
        fit = _grid_fit(ps, ys.astype(np.float64), frac, xg, bins)
        out["smooth_p"] = [float(v) for v in xg]
        out["smooth_observed"] = [float(v) for v in fit]
    return out
