"""Calibration suite and reliability curve of a large group given as runs of tied rows.

A group of a pooled summary audit is, in score order, a sequence of *runs*: ``c`` ECGs with
the same score ``v`` and the same label (one run per (bin, stratum, label) cell). The
row-level functions (:func:`ecgaudit.metrics.calibration_suite`,
:func:`ecgaudit.metrics.reliability_curve`) fit a group larger than ``max_exact`` rows by
the binned lowess (:func:`ecgaudit.metrics._calsuite.binned_lowess_fit`, compiled kernel
``_lowesskernels.binned_lowess``) at quantile grid points; everything that fit reads of the
rows is a function of the runs: the equal-mass and equal-width row bins
(``_calsuite._bin_edges``), each bin's row count, mean score and label sum, the windows'
first rows (``_lowesskernels._window_start``), the two cut bins' pieces (prefix sums of
deviations and labels at the window ends) and the tied-window rule. This module computes
those aggregates from the runs, in O(runs + bins) memory, and hands them to the kernel's
own fit (``_lowesskernels.fit_from_bins``, the loop ``binned_lowess`` runs on the rows'
aggregates: one home for the weights, lever and sums). Sums over rows (bin means, label
sums, prefix sums) are taken per run (``v * c``) rather than row by row, so results agree
with the row functions to rounding (tested to 1e-12; on runs of one row each, with
``binned_lowess`` to 1e-13), not bit for bit. Groups of at most ``max_exact``
rows are not handled here (their exact windows need the rows; the caller expands them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ecgaudit.metrics._calsuite import LOWESS_BINS
from ecgaudit.metrics._intervals import wilson_ci
from ecgaudit.metrics._lowesskernels import fit_from_bins
from ecgaudit.metrics._quantiles import _indexes, _lerp

__all__ = ["Runs", "runs_calibration_suite", "runs_reliability_curve"]


class Runs:
    """Rows in score order as runs: ``count[r]`` rows of score ``value[r]``, label ``label[r]``.

    Parameters
    ----------
    value : ndarray of float64
        Non-decreasing scores of the runs.
    label : ndarray of int
        Label (0/1) of every run.
    count : ndarray of int64
        Rows of every run (all > 0).
    """

    def __init__(self, value: np.ndarray, label: np.ndarray, count: np.ndarray) -> None:
        self.v = np.asarray(value, dtype=np.float64)
        self.y = np.asarray(label, dtype=np.float64)
        self.c = np.asarray(count, dtype=np.int64)
        self.cum = np.concatenate(([0], np.cumsum(self.c)))
        self.n = int(self.cum[-1])

    def at(self, rows: np.ndarray) -> np.ndarray:
        """Score of the rows ``rows`` (0-based; negative counts from the end)."""
        rows = np.where(rows < 0, rows + self.n, rows)
        return self.v[np.searchsorted(self.cum, rows, side="right") - 1]

    def first_at_least(self, t: np.ndarray) -> np.ndarray:
        """``searchsorted(x, t, side="left")`` of the rows' scores."""
        return self.cum[np.searchsorted(self.v, t, side="left")]

    def first_above(self, t: np.ndarray) -> np.ndarray:
        """``searchsorted(x, t, side="right")`` of the rows' scores."""
        return self.cum[np.searchsorted(self.v, t, side="right")]

    def quantile(self, q: np.ndarray) -> np.ndarray:
        """:func:`ecgaudit.metrics._quantiles.sorted_quantile` of the rows' scores."""
        prev_i, next_i, gamma = _indexes(self.n, np.atleast_1d(q))
        return _lerp(self.at(prev_i), self.at(next_i), gamma)


class _Segments:
    """The runs cut at the bin edges: each segment in one run and one bin."""

    def __init__(self, runs: Runs, edges: np.ndarray) -> None:
        bp = np.union1d(runs.cum, edges)
        self.lo = bp[:-1]
        length = np.diff(bp).astype(np.float64)
        run = np.searchsorted(runs.cum, self.lo, side="right") - 1
        self.bin = np.searchsorted(edges, self.lo, side="right") - 1
        nb = edges.size - 1
        self.cnt = np.diff(edges).astype(np.float64)
        self.v, self.y = runs.v[run], runs.y[run]
        self.mx = np.bincount(self.bin, weights=self.v * length, minlength=nb) / self.cnt
        self.sy = np.bincount(self.bin, weights=self.y * length, minlength=nb)
        dev = (self.v - self.mx[self.bin]) * length
        self.dev = np.concatenate(([0.0], np.cumsum(dev)))
        self.cy = np.concatenate(([0.0], np.cumsum(self.y * length)))

    def prefix(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the sums over the rows before ``rows`` of ``x - mx[bin]`` and of labels."""
        j = np.searchsorted(self.lo, rows, side="right") - 1
        part = (rows - self.lo[j]).astype(np.float64)
        return (self.dev[j] + (self.v[j] - self.mx[self.bin[j]]) * part,
                self.cy[j] + self.y[j] * part)


def _bin_edges(runs: Runs, bins: int) -> np.ndarray:
    """``_calsuite._bin_edges`` of the rows (equal-mass and equal-width cuts merged)."""
    n = runs.n
    if n <= bins:
        return np.arange(n + 1, dtype=np.int64)
    half = max(bins // 2, 1)
    mass = (np.arange(half + 1, dtype=np.int64) * n) // half
    width = runs.first_at_least(np.linspace(runs.v[0], runs.v[-1], half + 1)[1:-1])
    return np.union1d(mass, width.astype(np.int64))


def _window_starts(runs: Runs, k: int, xv: np.ndarray) -> np.ndarray:
    """First ``i`` with ``(x[i] + x[i + k]) / 2 >= val`` for every ``val`` of ``xv``."""
    lo = np.zeros(xv.size, dtype=np.int64)
    hi = np.full(xv.size, runs.n - k, dtype=np.int64)
    while (lo < hi).any():
        active = lo < hi
        mid = (lo + hi) // 2
        below = (runs.at(mid) + runs.at(np.minimum(mid + k, runs.n - 1))) / 2.0 < xv
        lo = np.where(active & below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)
    return lo


def binned_lowess_runs(runs: Runs, frac: float, xv: np.ndarray,
                       bins: int = LOWESS_BINS) -> np.ndarray:
    """:func:`ecgaudit.metrics._calsuite.binned_lowess_fit` of the rows the runs describe.

    The aggregates that ``_lowesskernels.binned_lowess`` reads of the rows (bins, windows,
    cut pieces) are computed from the runs; the fit itself is the kernel's
    (``_lowesskernels.fit_from_bins``), then the tied-window rule.
    """
    n = runs.n
    k = min(max(int(frac * n + 1e-10), 2), n)
    edges = _bin_edges(runs, bins)
    seg = _Segments(runs, edges)
    left = _window_starts(runs, k, xv)
    right = left + k
    radius = np.maximum(xv - runs.at(left), runs.at(right - 1) - xv)
    bl = np.searchsorted(edges, left, side="right") - 1
    br = np.searchsorted(edges, right - 1, side="right") - 1
    lo = np.stack([left, np.where(br > bl, np.maximum(edges[br], left), right)], axis=1)
    hi = np.stack([np.minimum(edges[bl + 1], right), right], axis=1)
    dev_lo, cy_lo = seg.prefix(lo)
    dev_hi, cy_hi = seg.prefix(hi)
    pc = (hi - lo).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty piece sits at the point
        pm = np.where(pc > 0, seg.mx[np.stack([bl, br], axis=1)] + (dev_hi - dev_lo) / pc,
                      xv[:, None])
    piece = np.ascontiguousarray(np.stack([pc, pm, cy_hi - cy_lo]))
    win = np.ascontiguousarray(np.stack([left, bl, br], axis=1), dtype=np.int64)
    out = fit_from_bins(np.ascontiguousarray(xv, dtype=np.float64), seg.cnt, seg.mx, seg.sy,
                        np.diff(edges), win, radius, piece)
    return _tied(runs, xv, k, out)


def _tied(runs: Runs, xv: np.ndarray, k: int, out: np.ndarray) -> np.ndarray:
    """``_calsuite._tied_windows``: a block of at least ``k`` ties gets its mean label."""
    lo, hi = runs.first_at_least(xv), runs.first_above(xv)
    tied = (hi - lo) >= k
    if not tied.any():
        return out
    cy = np.concatenate(([0.0], np.cumsum(runs.y * runs.c)))
    lo_r = np.searchsorted(runs.cum, lo)
    hi_r = np.searchsorted(runs.cum, hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (cy[hi_r] - cy[lo_r]) / (hi - lo)
    return np.where(tied, mean, out)


def runs_calibration_suite(runs: Runs, *, frac: float = 2.0 / 3.0, grid: int = 400,
                           lowess_bins: int = LOWESS_BINS) -> dict[str, float]:
    """:func:`ecgaudit.metrics.calibration_suite` of a group larger than ``max_exact``."""
    xg = np.unique(runs.quantile(np.linspace(0.0, 1.0, grid)))
    fit = binned_lowess_runs(runs, frac, xg, lowess_bins)
    err = np.abs(np.interp(runs.v, xg, fit) - runs.v)
    if np.isnan(err).any():
        return {"ici": float("nan"), "e50": float("nan"), "e90": float("nan"),
                "emax": float("nan")}
    ici = float(np.sum(err * runs.c) / runs.n)
    order = np.argsort(err, kind="stable")
    sorted_runs = Runs(err[order], np.zeros(err.size), runs.c[order])
    n = runs.n
    half = n // 2
    mid = np.array([half - 1, half] if n % 2 == 0 else [half])
    e50 = float(np.mean(sorted_runs.at(mid)))
    e90 = float(sorted_runs.quantile(np.array([0.9]))[0])
    return {"ici": ici, "e50": e50, "e90": e90, "emax": float(err.max())}


def runs_reliability_curve(runs: Runs, n_bins: int = 10, *, level: float = 0.95,
                           frac: float = 2.0 / 3.0, points: int = 50,
                           lowess_bins: int = LOWESS_BINS) -> dict[str, Any]:
    """:func:`ecgaudit.metrics.reliability_curve` of a group larger than ``max_exact``."""
    out: dict[str, list[float]] = {k: [] for k in (
        "bin_lower", "bin_upper", "mean_predicted", "observed", "observed_ci_low",
        "observed_ci_high", "n", "smooth_p", "smooth_observed")}
    size, extra = divmod(runs.n, n_bins)
    stops = np.cumsum([size + 1] * extra + [size] * (n_bins - extra))
    edges = np.union1d([0], stops)
    seg = _Segments(runs, edges)
    for start, stop in zip(np.concatenate(([0], stops[:-1])), stops):
        if stop == start:
            continue
        m, b = int(stop - start), int(np.searchsorted(edges, start))
        k = round(float(seg.sy[b]))
        lo, hi = wilson_ci(k, m, level)
        for key, val in (("bin_lower", runs.at(np.array([start]))[0]),
                         ("bin_upper", runs.at(np.array([stop - 1]))[0]),
                         ("mean_predicted", seg.mx[b]), ("observed", k / m),
                         ("observed_ci_low", lo), ("observed_ci_high", hi), ("n", m)):
            out[key].append(float(val))
    xg = np.unique(runs.quantile(np.linspace(0.0, 1.0, points)))
    fit = binned_lowess_runs(runs, frac, xg, lowess_bins)
    out["smooth_p"] = [float(v) for v in xg]
    out["smooth_observed"] = [float(v) for v in fit]
    return out
