"""Metrics of every group from the compiled kernels' sufficient statistics.

:class:`FastEngine` prepares each task once (rows sorted by score, tie blocks, the finest
stratum of every row and the map from strata to the groups of every grouping) and turns a
batch of row weights into the same ``(R, len(METRICS), G)`` arrays per grouping as
:func:`ecgaudit.metrics._bootstats.replicate_metrics`. The kernels fill the
sufficient statistics of :mod:`ecgaudit.metrics._suffstats`, whose ``assemble`` forms the
metrics.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ecgaudit.metrics import _kernels
from ecgaudit.metrics._calibration import calibration_logit
from ecgaudit.metrics._order import score_label_order
from ecgaudit.metrics._suffstats import (
    EXTENDED,
    EXTENDED_INDEX,
    SuffStats,
    assemble,
    delong_variance,
)

__all__ = [
    "EXTENDED",
    "EXTENDED_INDEX",
    "FastEngine",
    "assemble",
    "delong_variance",
    "run_stats",
    "start_arrays",
]


def _prepare(tasks: Sequence[tuple[np.ndarray, np.ndarray, float]], strata: np.ndarray,
             clip: float) -> dict[str, np.ndarray]:
    """Sort every task by (score, label); the sorted columns as (T, n) arrays.

    Tasks are prepared in two threads (numpy's sorts and gathers release the GIL).
    """
    n_t, n = len(tasks), strata.size
    index = np.int32 if n < 2**31 else np.int64  # compact: 22 bytes per row and task
    out = {"orders": np.empty((n_t, n), dtype=index), "ys": np.empty((n_t, n), np.int8),
           "ps": np.empty((n_t, n)), "xs": np.empty((n_t, n)),
           "fs": np.empty((n_t, n), dtype=np.int32), "newblk": np.ones((n_t, n), np.bool_)}

    def one(t: int) -> None:
        y, p, _ = tasks[t]
        p = np.asarray(p, dtype=np.float64)
        order = score_label_order(y, p)
        out["orders"][t] = order
        ps = out["ps"][t]
        np.take(p, order, out=ps)
        np.not_equal(ps[1:], ps[:-1], out=out["newblk"][t, 1:])
        np.take(np.asarray(y, dtype=np.int8), order, out=out["ys"][t])
        out["xs"][t] = calibration_logit(ps, clip)
        np.take(strata.astype(np.int32), order, out=out["fs"][t])

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, range(n_t)))
    return out


class FastEngine:
    """Compiled evaluation of every metric for every group of every grouping.

    Parameters
    ----------
    tasks : sequence of (y, p, threshold)
        Labels, scores and frozen threshold of each task.
    grouping_codes : sequence of ndarray
        Group code per row, one array per grouping.
    n_groups : sequence of int
        Number of groups of each grouping.
    strata : ndarray of int
        Finest stratum per row (intersection of all groupings' codes).
    references : sequence of int or None, optional
        Reference group of each grouping (for the cross-group AUCs).
    clip : float
        Score clip before the logit of the recalibration fit.
    ece_bins : int
        Equal-mass ECE bins.
    """

    def __init__(self, tasks: Sequence[tuple[np.ndarray, np.ndarray, float]],
                 grouping_codes: Sequence[np.ndarray], n_groups: Sequence[int],
                 strata: np.ndarray, references: Sequence[int | None] | None = None, *,
                 clip: float = 0.0, ece_bins: int = 10) -> None:
        strata = np.asarray(strata, dtype=np.int64)
        n_fine = int(strata.max()) + 1 if strata.size else 1
        first = np.zeros(n_fine, dtype=np.int64)
        if strata.size:
            first[strata[::-1]] = np.arange(strata.size)[::-1]
        self.offsets = np.concatenate([[0], np.cumsum(n_groups)]).astype(np.int64)
        gmap = np.zeros((len(grouping_codes), n_fine), dtype=np.int64)
        for k, codes in enumerate(grouping_codes):
            if strata.size:  # without rows there is no stratum to map
                gmap[k] = self.offsets[k] + np.asarray(codes, dtype=np.int64)[first]
        self.gmap = gmap
        self.n_fine = n_fine
        self.n_slots = int(self.offsets[-1])
        self.refslot = np.full(self.n_slots, -1, dtype=np.int64)
        for k, ref in enumerate(references or [None] * len(grouping_codes)):
            if ref is not None:
                lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
                self.refslot[lo:hi] = lo + int(ref)
                self.refslot[lo + int(ref)] = -1
        self.cohort_slots = np.arange(int(self.offsets[1]) if len(n_groups) else 0)
        self.ece_bins = int(ece_bins)
        self.sorted = _prepare(tasks, strata, clip)
        self.thresholds = np.array([float(t) for _, _, t in tasks], dtype=np.float64)

    def metrics(self, weights: np.ndarray, *, calibration: bool = True,
                starts: Sequence[tuple[np.ndarray, np.ndarray]] | None = None
                ) -> list[list[np.ndarray]]:
        """Every metric of every group of every grouping of every task for row weights.

        Parameters
        ----------
        weights : ndarray of int, shape (R, n)
            Row weights (row order), one replicate per row.
        calibration : bool
            Fit calibration intercept/slope (most of the cost); ``nan`` otherwise.
        starts : sequence of tuple of ndarray, optional
            Newton starting values per task and slot (e.g. the point estimates).

        Returns
        -------
        metrics : list of list of ndarray
            ``[task][grouping]`` arrays of shape ``(R, len(EXTENDED), G_k)``.
        delong : list of list of ndarray
            ``[task][grouping]`` DeLong variances of the AUROC, shape ``(R, G_k)`` (for
            unit weights, the variance of the point estimate).
        """
        w = np.ascontiguousarray(weights, dtype=np.int32)
        return run_stats(self.sorted, w, self.gmap, self.refslot, self.cohort_slots,
                         self.n_fine, self.thresholds, self.ece_bins, calibration, starts,
                         self.offsets)


def start_arrays(starts: Sequence[tuple[np.ndarray, np.ndarray]] | None, n_t: int, n_s: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Newton start values ``(T, S)`` of intercept and slope (``nan``: no start)."""
    if starts is None:
        nan = np.full((n_t, n_s), np.nan)
        return nan, nan
    return (np.stack([np.asarray(s[0], dtype=np.float64) for s in starts]),
            np.stack([np.asarray(s[1], dtype=np.float64) for s in starts]))


def run_stats(arrays: dict[str, np.ndarray], w: np.ndarray, gmap: np.ndarray,
              refslot: np.ndarray, cohort_slots: np.ndarray, n_fine: int,
              thresholds: np.ndarray, ece_bins: int, calibration: bool,
              starts: Sequence[tuple[np.ndarray, np.ndarray]] | None,
              offsets: np.ndarray) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """Call :func:`ecgaudit.metrics._kernels.task_stats`; split metrics and DeLong variances."""
    n_t = arrays["orders"].shape[0]
    n_s = int(offsets[-1])
    stats = SuffStats.zeros(n_t, w.shape[0], n_slots=n_s)
    a0, b0 = start_arrays(starts, n_t, n_s)
    _kernels.task_stats(w, arrays["orders"], arrays["ys"], arrays["ps"], arrays["xs"],
                        arrays["fs"], arrays["newblk"], gmap, refslot, n_fine, thresholds,
                        ece_bins, calibration, a0, b0, stats.ints, stats.floats)
    out, var = [], []
    for t in range(n_t):
        full = assemble(stats.task(t), refslot, cohort_slots)
        dv = delong_variance(stats.task(t))
        out.append([full[:, :, lo:hi] for lo, hi in itertools.pairwise(offsets)])
        var.append([dv[:, lo:hi] for lo, hi in itertools.pairwise(offsets)])
    return out, var
