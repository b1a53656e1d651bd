"""Bootstrap replicates of every metric from (stratum, score bin, label) cells alone.

:class:`CellEngine` is the evaluator of an audit whose data are cells with ECG counts (a
pooled summary audit): its replicates are drawn per cell by
:func:`ecgaudit.metrics._cellboot.cell_replicates` (the stratified multinomial of the row
bootstrap, or given replicate counts) and reduced by the binned mode's per-replicate
steps, so their cost and memory depend on the cells, never on the ECGs. The score bins are
the cells' own bins (each with its one score), so a replicate is the row bootstrap's
replicate of the ECGs the cells describe, exactly, up to the recalibration fit, which, as
in the binned mode of :mod:`ecgaudit.metrics._binned`, runs on coarser bins (runs of at
most ``CAL_FACTOR`` occupied bins spanning at most ``CAL_WIDTH`` on the logit scale, each
at the ECG-weighted mean logit of its bins).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecgaudit.metrics import _binkernels, _cellboot, _kernels
from ecgaudit.metrics._binned import CAL_FACTOR, CAL_WIDTH
from ecgaudit.metrics._calibration import calibration_logit
from ecgaudit.metrics._fastboot import FastEngine, start_arrays
from ecgaudit.metrics._hashrng import replicate_keys
from ecgaudit.metrics._suffstats import SuffStats, assemble

__all__ = ["CellEngine", "TaskCells", "coarse_bins"]


@dataclass(frozen=True)
class TaskCells:
    """One task's cells.

    Attributes
    ----------
    stratum, bin, label, n : ndarray of int64
        Finest stratum, score bin, label and ECG count of every cell.
    rep : ndarray of float64
        Score of every bin (non-decreasing).
    threshold : float
        Frozen operating threshold (a bin edge: ``rep >= threshold`` flags a bin).
    counts : ndarray of int32, shape (n_cells, B), optional
        Given replicate counts of every cell (instead of drawing them).
    """

    stratum: np.ndarray
    bin: np.ndarray
    label: np.ndarray
    n: np.ndarray
    rep: np.ndarray
    threshold: float
    counts: np.ndarray | None = None


def coarse_bins(rep: np.ndarray, weight: np.ndarray, clip: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Coarse recalibration bin of every score bin and the covariate of every coarse bin.

    Greedy runs of consecutive bins: a run ends before an occupied bin that would make it
    hold more than ``CAL_FACTOR`` bins or span more than ``CAL_WIDTH`` on the logit scale
    (empty bins join the current run). Each coarse bin's covariate is the ``weight``-
    weighted mean ``logit(clip(rep))`` of its bins.
    """
    nb = rep.size
    occupied = weight > 0
    x = np.zeros(nb)
    if occupied.any():
        x[occupied] = calibration_logit(rep[occupied], clip)
    coarse = np.zeros(nb, dtype=np.int64)
    c, size, low = 0, 0, np.inf
    for b in range(nb):
        if occupied[b]:
            if size >= CAL_FACTOR or x[b] - low > CAL_WIDTH:
                c, size, low = c + 1, 0, np.inf
            low = min(low, x[b])
        size += 1
        coarse[b] = c
    w = np.bincount(coarse, weights=weight, minlength=c + 1)
    x_cal = np.bincount(coarse, weights=x * weight, minlength=c + 1) / np.maximum(w, 1)
    return coarse, x_cal


class CellEngine:
    """Replicates ``[task][grouping] -> (R, len(EXTENDED), G)`` from cells.

    Parameters
    ----------
    tasks : sequence of TaskCells
        Every task's cells (the same strata and stratum totals in every task).
    grouping_codes : sequence of ndarray
        Group of every finest stratum, one array per grouping.
    n_groups, references
        Groups and reference group of each grouping.
    seed : int
        Bootstrap seed (replicate keys of :func:`~ecgaudit.metrics._hashrng.replicate_keys`).
    clip, ece_bins
        As for :class:`~ecgaudit.metrics._fastboot.FastEngine`.
    starts : sequence of (ndarray, ndarray), optional
        Newton start values per task and slot (the point estimates).
    """

    def __init__(self, tasks: Sequence[TaskCells], grouping_codes: Sequence[np.ndarray],
                 n_groups: Sequence[int], references: Sequence[int | None], *, seed: int,
                 clip: float = 0.0, ece_bins: int = 10,
                 starts: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        n_fine = int(np.asarray(grouping_codes[0]).size) if grouping_codes else 1
        base = FastEngine([], grouping_codes, n_groups, np.arange(n_fine), references,
                          clip=clip, ece_bins=ece_bins)
        self.offsets, self.n_slots = base.offsets, base.n_slots
        self.refslot, self.cohort_slots = base.refslot, base.cohort_slots
        gmap = np.vstack([base.gmap, np.full((1, n_fine), base.n_slots)])
        self.plan = _binkernels.marginal_plan(gmap, np.concatenate([base.offsets,
                                                                   [base.n_slots + 1]]))
        self.seed, self.ece_bins = int(seed), int(ece_bins)
        nb = max(t.rep.size for t in tasks)
        self.width = 2 * nb
        self.n_cells = n_fine * self.width
        coarse = [coarse_bins(t.rep, np.bincount(t.bin, weights=t.n, minlength=t.rep.size),
                              clip) for t in tasks]
        self.n_coarse = max(x.size for _, x in coarse)
        self.coarse_of = np.stack([np.concatenate([c, np.full(nb - c.size, x.size - 1)])
                                   for c, x in coarse])
        self.x_cal = np.stack([np.concatenate([x, np.full(self.n_coarse - x.size, x[-1])])
                               for _, x in coarse])
        self.reps = np.stack([np.concatenate([t.rep, np.full(nb - t.rep.size, np.inf)])
                              for t in tasks])
        self.thr = np.array([float(t.threshold) for t in tasks])
        self._layout(tasks)
        self.a0, self.b0 = start_arrays(starts, len(tasks), self.n_slots)

    def _layout(self, tasks: Sequence[TaskCells]) -> None:
        """Cells of all tasks in (task, stratum) runs, their codes and the run bounds."""
        parts, bounds, lo = [], [0], [0]
        for t in tasks:
            order = np.lexsort((t.label, t.bin, t.stratum))
            s = t.stratum[order]
            runs = np.flatnonzero(np.diff(s)) + 1
            bounds += [*(lo[-1] + runs).tolist(), lo[-1] + s.size]
            lo.append(lo[-1] + s.size)
            parts.append((order, s * self.width + 2 * t.bin[order] + t.label[order]))
        self.task_lo = np.asarray(lo, dtype=np.int64)
        self.bounds = np.unique(np.asarray(bounds, dtype=np.int64))
        self.code = np.concatenate([c for _, c in parts]).astype(np.int64)
        self.n = np.concatenate([t.n[o] for t, (o, _) in zip(tasks, parts)]).astype(np.int64)
        given = [t.counts for t in tasks]
        self.counts = None
        if all(g is not None for g in given):
            self.counts = np.concatenate([np.asarray(g, dtype=np.int32)[o]
                                          for g, (o, _) in zip(given, parts)])

    def replicates(self, block: range, *, calibration: bool = True) -> list[list[np.ndarray]]:
        """Metrics of replicates ``block``: ``[task][grouping] -> (R, len(EXTENDED), G)``."""
        r = len(block)
        n_t = self.task_lo.size - 1
        stats = SuffStats.zeros(n_t, r, n_slots=self.n_slots)
        keys = replicate_keys(self.seed, block)
        if self.counts is None:
            counts = np.zeros((self.n.size, 0), dtype=np.int32)
        else:
            counts = np.ascontiguousarray(self.counts[:, block.start:block.stop])
        _cellboot.cell_replicates(
            keys, counts, max(1, min(r, _kernels.n_threads())), self.task_lo, self.bounds,
            self.n, self.code, self.n_cells, *self.plan, self.width, self.reps, self.thr,
            self.ece_bins, self.refslot, self.n_slots, self.coarse_of, self.n_coarse,
            self.x_cal, self.a0, self.b0, calibration, stats.ints, stats.floats)
        out = []
        for t in range(n_t):
            full = assemble(stats.task(t), self.refslot, self.cohort_slots)
            out.append([full[:, :, lo:hi] for lo, hi in itertools.pairwise(self.offsets)])
        return out
