"""Binned bootstrap mode: replicates on (stratum, score bin, label) cells.

For very large inputs the replicates (never the point estimates) can be computed on a
quantised copy of each task. :func:`quantize` cuts the task's scores into ``bins``
equal-mass bins (tied scores stay in one bin; the frozen threshold is always a bin edge, so
the confusion counts are exact) and replaces every score by the mean score of its bin.
A replicate in binned mode is then *exactly* the replicate of the exact engine on the
quantised scores (tested), so the only approximation is the quantisation itself: scores
within one bin count as tied (AUROC and AUPRC count such pairs 1/2), and Brier, ECE and O/E
use the bin's mean score. The recalibration fit, whose Newton steps need one exponential
per cell and group, uses coarser bins: runs of at most ``CAL_FACTOR`` consecutive score
bins whose rows span at most ``CAL_WIDTH`` on the logit scale (a bin wider than that stays
alone), each represented by the mean ``logit(clip(p))`` of its rows. ``benchmarks/README.md``
reports the measured size of the effect on the interval limits.

:class:`BinnedEngine` never materialises row weights: the fused kernel of
:mod:`ecgaudit.metrics._binfused` takes each replicate from its draws to every statistic in
one cache-resident pass (draw counts per unit, stratum cells per task, group cells as sums
of strata, one scan per group, the recalibration fit on coarse cells).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ecgaudit.metrics import _binfused, _binkernels, _binsweep, _kernels
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._calibration import calibration_logit
from ecgaudit.metrics._fastboot import FastEngine, start_arrays
from ecgaudit.metrics._hashrng import replicate_keys
from ecgaudit.metrics._suffstats import F_CAL_A, F_CAL_B, SuffStats, assemble

__all__ = ["CAL_FACTOR", "CAL_WIDTH", "BinnedEngine", "QuantisedTask", "quantize"]

#: At most this many score bins are merged into one bin of the recalibration fit ...
CAL_FACTOR = 16
#: ... and only while their rows span at most this much on the logit scale.
CAL_WIDTH = 0.1
#: Most stratum cells (all tasks) for the stratum-by-stratum draws (int32: 64 MB per thread).
FUSED_CELLS = 1 << 24


def quantize(p: np.ndarray, threshold: float, bins: int,
             order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cut scores into equal-mass bins; return each row's bin and each bin's mean score.

    Parameters
    ----------
    p : ndarray of float
        Scores.
    threshold : float
        Frozen operating threshold (always a bin edge).
    bins : int
        Number of equal-mass bins (at most ``bins + 1`` after the threshold split).
    order : ndarray of int, optional
        A permutation sorting ``p`` ascending, if already known.

    Returns
    -------
    tuple of ndarray
        Bin index per row (``0..n_bins-1``, increasing with the score) and the mean score of
        every bin (clipped into the bin's range, so a bin above the threshold keeps a mean
        above it).
    """
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    if order is None:
        order = np.argsort(p, kind="stable")
    ps = p[order]
    # Rows below each row's score (the first index of its tie block), in one pass: ``ps``
    # is sorted, so this is ``searchsorted(ps, ps, "left")``.
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(ps[1:], ps[:-1], out=first[1:])
    below = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    raw = (below * int(bins)) // n + int(bins) * (ps >= threshold)
    # ``raw`` never decreases along ``ps``: its distinct values numbered in order are
    # ``np.unique(raw, return_inverse=True)[1]`` without the sort.
    step = np.empty(n, dtype=np.int64)
    step[0] = 0
    np.not_equal(raw[1:], raw[:-1], out=step[1:])
    inv = np.cumsum(step)
    count = np.bincount(inv)
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])
    mean = np.bincount(inv, weights=ps) / count
    lo = ps[starts]
    hi = ps[starts + count - 1]
    rep = np.clip(mean, lo, hi)
    bin_of = np.empty(n, dtype=np.int64)
    bin_of[order] = inv
    return bin_of, rep


class QuantisedTask:
    """One task in binned mode: bins, bin scores and the coarse recalibration covariate.

    Attributes
    ----------
    bin_of : ndarray of int64
        Score bin of every row.
    rep : ndarray of float64
        Mean score of every bin (the score of its rows in binned mode).
    coarse_of : ndarray of int64
        Coarse recalibration bin of every score bin (non-decreasing).
    x_cal : ndarray of float64
        Recalibration covariate of every coarse bin: the mean ``logit(clip(p))`` of its
        rows.
    """

    def __init__(self, p: np.ndarray, threshold: float, bins: int, clip: float,
                 order: np.ndarray | None = None) -> None:
        p = np.asarray(p, dtype=np.float64)
        self.bin_of, self.rep = quantize(p, threshold, bins, order)
        x = calibration_logit(p, clip)
        nb = self.rep.size
        lo = np.full(nb, np.inf)
        hi = np.full(nb, -np.inf)
        np.minimum.at(lo, self.bin_of, x)
        np.maximum.at(hi, self.bin_of, x)
        coarse = np.zeros(nb, dtype=np.int64)
        start, c = 0, 0
        for b in range(1, nb):  # greedy runs of bins: at most CAL_FACTOR, CAL_WIDTH wide
            if b - start >= CAL_FACTOR or hi[b] - lo[start] > CAL_WIDTH:
                start, c = b, c + 1
            coarse[b] = c
        self.coarse_of = coarse
        rows = coarse[self.bin_of]
        count = np.bincount(rows, minlength=c + 1)
        self.x_cal = np.bincount(rows, weights=x, minlength=c + 1) / np.maximum(count, 1)

    def scores(self) -> np.ndarray:
        """Binned score of every row."""
        return self.rep[self.bin_of]

    def covariate(self) -> np.ndarray:
        """Recalibration covariate of every row."""
        return self.x_cal[self.coarse_of[self.bin_of]]


class BinnedEngine:
    """Binned replicates of every metric of every group of every grouping.

    Parameters
    ----------
    tasks : sequence of (y, p, threshold)
        Labels, scores and threshold of each task.
    grouping_codes, n_groups, strata
        As for :class:`ecgaudit.metrics._fastboot.FastEngine`.
    sampler : Sampler
        The sampler whose units and draws are used.
    references : sequence of int or None, optional
        Reference group of each grouping.
    bins : int
        Equal-mass score bins per task.
    clip, ece_bins
        As for :class:`~ecgaudit.metrics._fastboot.FastEngine`.
    orders : ndarray, optional
        Per task, a permutation sorting its scores (reused instead of sorting again).
    """

    def __init__(self, tasks: Sequence[tuple[np.ndarray, np.ndarray, float]],
                 grouping_codes: Sequence[np.ndarray], n_groups: Sequence[int],
                 strata: np.ndarray, sampler: Sampler,
                 references: Sequence[int | None] | None = None, *, bins: int,
                 clip: float = 0.0, ece_bins: int = 10,
                 orders: np.ndarray | None = None) -> None:
        self.sampler = sampler
        base = FastEngine([], grouping_codes, n_groups, strata, references, clip=clip,
                          ece_bins=ece_bins)
        self.offsets, self.n_slots = base.offsets, base.n_slots
        self.refslot, self.cohort_slots = base.refslot, base.cohort_slots
        # One more slot, the whole cohort (background of BPSN/BNSP), after the groups.
        self.gmap = np.vstack([base.gmap, np.full((1, base.n_fine), base.n_slots)])
        plan_offsets = np.concatenate([base.offsets, [base.n_slots + 1]])
        self.plan = _binkernels.marginal_plan(self.gmap, plan_offsets)
        self.ece_bins = int(ece_bins)
        strata = np.asarray(strata, dtype=np.int64)
        quantised = [QuantisedTask(p, t, bins, clip, None if orders is None else orders[i])
                     for i, (_, p, t) in enumerate(tasks)]
        self.width = 2 * max(q.rep.size for q in quantised)
        self.n_coarse = max(q.x_cal.size for q in quantised)
        self.coarse_of = [np.concatenate([q.coarse_of, np.full(self.width // 2 - q.rep.size,
                                                               q.x_cal.size - 1)])
                          for q in quantised]
        self.cells = np.empty((len(quantised), strata.size), dtype=np.int32)
        row_base = strata * self.width
        for i, ((y, _, _), q) in enumerate(zip(tasks, quantised)):  # no (T, n) int64 stack
            self.cells[i] = row_base + 2 * q.bin_of + np.asarray(y, dtype=np.int64)
        self.thresholds = [float(t) for _, _, t in tasks]
        self.fine_rep = [np.concatenate([q.rep, np.full(self.width // 2 - q.rep.size, np.inf)])
                         for q in quantised]
        self.x_cal = np.stack([np.concatenate([q.x_cal, np.full(self.n_coarse - q.x_cal.size,
                                                                q.x_cal[-1])])
                               for q in quantised])
        self.n_fine = base.n_fine
        # Rows of the unit in each sampler slot, in slot order (CSR), for the fused kernel.
        unit_of_slot = sampler.unit_sorted
        if sampler.row_unit is None:
            rows = unit_of_slot
            self.ptr = np.zeros(0, dtype=np.int64)
        else:
            by_unit = np.argsort(sampler.row_unit, kind="stable")
            per_unit = np.bincount(sampler.row_unit, minlength=sampler.n_units)
            unit_ptr = np.concatenate([[0], np.cumsum(per_unit)])
            rows = np.concatenate([by_unit[unit_ptr[u]:unit_ptr[u + 1]] for u in unit_of_slot])
            self.ptr = np.concatenate([[0], np.cumsum(per_unit[unit_of_slot])]).astype(np.int64)
        self.slot_cells = np.ascontiguousarray(self.cells[:, rows])
        #: Stratum runs of one-row slots: draws and sweeps fused stratum by stratum (their
        #: cells of all tasks at once, per thread: only while they stay under 64 MB).
        small = self.cells.shape[0] * base.n_fine * self.width <= FUSED_CELLS
        runs = None if self.ptr.size or not small else _binsweep.stratum_runs(
            sampler.slot_start, self.slot_cells, self.width)
        self.runs = runs or (np.zeros(0, np.int64), np.zeros(0, np.int64),
                             np.zeros((self.cells.shape[0], 0), np.uint16))
        if runs is not None:  # the runs' relative codes replace the slots' cells
            self.slot_cells = np.zeros((self.cells.shape[0], 0), dtype=np.int32)
        self.reps = np.stack(self.fine_rep)
        self.thr_array = np.asarray(self.thresholds, dtype=np.float64)
        self.coarse_stack = np.stack(self.coarse_of)
        #: Draws of one sampler slot counted in its byte (see :mod:`._binfused`).
        self.cap = _binfused.CAP
        #: Replicates per batch of :meth:`weighted`: its cell counts stay under about 64 MB.
        self.batch = max(1, (1 << 24) // (self.cells.shape[0] * self.n_fine * self.width))

    def _finish(self, counts: np.ndarray, calibration: bool,
                starts: Sequence[tuple[np.ndarray, np.ndarray]] | None) -> list[list[np.ndarray]]:
        r, n_t = counts.shape[0], counts.shape[1]
        n_s = self.n_slots
        stats = SuffStats.zeros(n_t, r, n_slots=n_s)
        ist, fst = stats.ints, stats.floats
        group_cells = np.empty((r, (n_s + 1) * self.width), dtype=np.int32)
        coarse = np.empty((r, n_t * n_s * self.n_coarse * 2), dtype=np.int32)
        span = n_s * self.n_coarse * 2
        for t in range(n_t):
            _binkernels.marginalize(np.ascontiguousarray(counts[:, t]), *self.plan,
                                    self.width, group_cells)
            _binkernels.binned_scan(group_cells, self.fine_rep[t], self.thresholds[t],
                                    self.ece_bins, self.refslot, n_s, ist[t], fst[t])
            if calibration:
                part = np.empty((r, span), dtype=np.int32)
                _binkernels.coarsen(group_cells, n_s, self.coarse_of[t], self.n_coarse, part)
                coarse[:, t * span:(t + 1) * span] = part
        if calibration:
            a0, b0 = start_arrays(starts, self.cells.shape[0], self.n_slots)
            _binfused.fit_coarse(coarse, self.n_coarse, self.x_cal, a0, b0,
                                 fst[:, :, F_CAL_A:F_CAL_B + 1])
        else:
            fst[:, :, F_CAL_A:F_CAL_B + 1] = np.nan
        return self._assemble(stats)

    def replicates(self, replicates: range, *, calibration: bool = True,
                   starts: Sequence[tuple[np.ndarray, np.ndarray]] | None = None
                   ) -> list[list[np.ndarray]]:
        """Metrics of the given replicates: ``[task][grouping] -> (R, len(EXTENDED), G)``."""
        keys = replicate_keys(self.sampler.seed, replicates)
        n_t, r, n_s = self.cells.shape[0], keys.size, self.n_slots
        stats = SuffStats.zeros(n_t, r, n_slots=n_s)
        a0, b0 = start_arrays(starts, self.cells.shape[0], self.n_slots)
        # One chunk per thread: numba's dynamic chunking (parallel_chunksize) measured 3x
        # slower here.
        self._run(keys, max(1, min(r, _kernels.n_threads())), calibration, a0, b0, stats)
        return self._assemble(stats)

    def _run(self, keys: np.ndarray, chunks: int, calibration: bool, a0: np.ndarray,
             b0: np.ndarray, stats: SuffStats) -> None:
        n_s = self.n_slots
        _binfused.binned_replicates(
            keys, chunks, self.cap,
            self.sampler.slot_start, self.sampler.slot_size, self.ptr, self.slot_cells, self.runs,
            self.n_fine * self.width, *self.plan, self.width, self.reps, self.thr_array,
            self.ece_bins, self.refslot, n_s, self.coarse_stack, self.n_coarse, self.x_cal,
            a0, b0, calibration, stats.ints, stats.floats)

    def _assemble(self, stats: SuffStats) -> list[list[np.ndarray]]:
        out = []
        for t in range(stats.ints.shape[0]):
            full = assemble(stats.task(t), self.refslot, self.cohort_slots)
            out.append([full[:, :, lo:hi] for lo, hi in itertools.pairwise(self.offsets)])
        return out

    def weighted(self, weights: np.ndarray, *, calibration: bool = True,
                 starts: Sequence[tuple[np.ndarray, np.ndarray]] | None = None
                 ) -> list[list[np.ndarray]]:
        """Metrics for explicit row weights (e.g. jackknife), same layout."""
        w = np.ascontiguousarray(weights, dtype=np.int32)
        parts = []
        for lo in range(0, w.shape[0], self.batch):
            sub = w[lo:lo + self.batch]
            counts = np.zeros((sub.shape[0], self.cells.shape[0], self.n_fine * self.width),
                              dtype=np.int32)
            _binkernels.aggregate_cells(sub, self.cells, counts)
            parts.append(self._finish(counts, calibration, starts))
        return _stack(parts)


def _stack(parts: list[list[list[np.ndarray]]]) -> list[list[np.ndarray]]:
    if len(parts) == 1:
        return parts[0]
    return [[np.concatenate([p[t][k] for p in parts]) for k in range(len(parts[0][t]))]
            for t in range(len(parts[0]))]
