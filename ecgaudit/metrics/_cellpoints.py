"""Point estimates and closed-form intervals of every group from (stratum, bin, label) cells.

:class:`CellSession` is :class:`~ecgaudit.metrics.MetricSession` for data that are cells
with ECG counts (a pooled summary audit): the ECGs a cell describes all carry the cell's
label and its bin's one score, so every statistic of those ECGs is a function of the cells.
The point estimates are the cell engine's pass at the cells' own counts ("replicate 0",
:func:`ecgaudit.metrics._cellboot.cell_replicates` with given counts, i.e. the binned
scan :func:`~ecgaudit.metrics._binkernels.scan_one` and fit
:func:`~ecgaudit.metrics._binfused.fit_cells`), with the recalibration fit on the score
bins themselves (one covariate per bin: the exact fit of the ECGs, not the bootstrap's
coarser bins). The DeLong variance is :func:`~ecgaudit.metrics._suffstats.delong_variance`
of the structural components, which are constant within a (group, bin, label) cell: a
positive's ``2 n_neg V10`` is twice the group's negatives below its bin plus those in it,
a negative's ``2 n_pos V01`` twice the positives above plus those in it. Memory and time
are O(cells x groupings), never O(ECGs).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from ecgaudit.errors import InputError
from ecgaudit.metrics import _cellboot
from ecgaudit.metrics._binary import ConfusionCounts
from ecgaudit.metrics._bootstrap import Grouping, TaskArrays
from ecgaudit.metrics._calibration import REASON_NO_CONVERGENCE, calibration_logit, no_fit_reason
from ecgaudit.metrics._cellengine import CellEngine, TaskCells
from ecgaudit.metrics._points import (
    PointEstimates,
    SessionBootstrap,
    failed_fits,
    group_scores,
    grouping_stats,
    points_from_rows,
    ranking_rows,
)
from ecgaudit.metrics._suffstats import (
    EXTENDED_INDEX,
    F_DL01,
    F_DL10,
    SuffStats,
    assemble,
    delong_variance,
)
from ecgaudit.metrics._table import GroupStats

__all__ = ["CellSession"]

#: Largest ECG count of one cell in the point-estimate pass (its counts are int32).
MAX_CELL_COUNT = np.iinfo(np.int32).max


class CellSession(SessionBootstrap):
    """Point estimates, closed-form intervals and bootstrap of an audit given as cells.

    :meth:`bootstrap` gives percentile intervals from replicates drawn (or given) per cell.

    Parameters
    ----------
    names : sequence of str
        Task names (in the order of ``tasks``).
    tasks : sequence of TaskCells
        Every task's cells; ``stratum`` is the finest stratum ``0..S-1``.
    groupings : sequence of Grouping
        Groupings whose ``codes`` give the group of every finest stratum (length ``S``).
    seed : int
        Bootstrap seed.
    clip, ece_bins
        The config's calibration settings.
    """

    def __init__(self, names: Sequence[str], tasks: Sequence[TaskCells],
                 groupings: Sequence[Grouping], *, seed: int = 0, clip: float = 0.0,
                 ece_bins: int = 10) -> None:
        self.groupings = list(groupings)
        self.cells = list(tasks)
        self.clip, self.ece_bins = clip, int(ece_bins)
        n_fine = int(np.asarray(groupings[0].codes).size)
        # Per-stratum placeholders: the bootstrap's checks read names and lengths only.
        self.tasks = [TaskArrays(n, np.zeros(n_fine, np.int8), np.zeros(n_fine), t.threshold)
                      for n, t in zip(names, tasks)]
        codes = [np.asarray(g.codes, dtype=np.int64) for g in groupings]
        sizes = [len(g.groups) for g in groupings]
        refs = [g.reference for g in groupings]
        if any(t.n.size and int(t.n.max()) > MAX_CELL_COUNT for t in tasks):
            raise InputError(f"summaries: a cell counts more than {MAX_CELL_COUNT} ECGs. "
                             "Hint: summarise per site or per partition (more strata).")
        given = [TaskCells(t.stratum, t.bin, t.label, t.n, t.rep, t.threshold,
                           t.n.astype(np.int32).reshape(-1, 1)) for t in tasks]
        engine = CellEngine(given, codes, sizes, refs, seed=seed, clip=clip,
                            ece_bins=ece_bins)
        _fine_calibration(engine, tasks, clip)
        slot_of = np.stack([off + c for off, c in zip(engine.offsets[:-1], codes)])
        self.estimates, self.delong = _estimates(engine, tasks, slot_of)
        ia, ib = EXTENDED_INDEX["cal_intercept"], EXTENDED_INDEX["cal_slope"]
        starts = [(np.concatenate([e[ia] for e in row]), np.concatenate([e[ib] for e in row]))
                  for row in self.estimates]
        self.evaluator = _CellEvaluator(CellEngine(
            tasks, codes, sizes, refs, seed=seed, clip=clip, ece_bins=ece_bins,
            starts=starts))
        self.points: PointEstimates | None = None

    def point_estimates(self, *, level: float = 0.95, min_events: int = 10) -> PointEstimates:
        """Per-group statistics and ranking metrics, as :class:`MetricSession` gives them."""
        stats: list[list[list[GroupStats]]] = []
        rows: list[tuple] = []
        for t, (task, cells) in enumerate(zip(self.tasks, self.cells)):
            per_task = []
            for gi, g in enumerate(self.groupings):
                group = np.asarray(g.codes, dtype=np.int64)[cells.stratum]
                per_task.append(self._group_stats(cells, group, len(g.groups),
                                                  self.estimates[t][gi],
                                                  self.delong[t][gi], level, min_events))
                rows += ranking_rows(task.name, g, self.estimates[t][gi])
            stats.append(per_task)
        self.points = points_from_rows(stats, rows)
        return self.points

    def _group_stats(self, cells: TaskCells, group: np.ndarray, n_g: int, e: np.ndarray,
                     v: np.ndarray, level: float, min_events: int) -> list[GroupStats]:
        """Statistics of every group of one grouping (``group``: each cell's group)."""
        n = cells.n.astype(np.int64)
        flag = (cells.rep[cells.bin] >= cells.threshold).astype(np.int64)
        c = np.bincount(group * 4 + 2 * cells.label + flag, weights=n,
                        minlength=4 * n_g).astype(np.int64).reshape(n_g, 2, 2)
        counts = [ConfusionCounts(int(x[1, 1]), int(x[0, 1]), int(x[0, 0]), int(x[1, 0]))
                  for x in c]
        occupied = n > 0  # an empty cell adds nothing to its group's sum
        score = cells.rep[cells.bin[occupied]]
        scores = group_scores(group[occupied], score, score, n[occupied] * score, n_g)
        return grouping_stats(counts, e, v, scores, self._cal_reasons(cells, group, counts, e),
                              None, level=level, min_events=min_events)

    def _cal_reasons(self, cells: TaskCells, group: np.ndarray,
                     counts: Sequence[ConfusionCounts], e: np.ndarray) -> dict[int, str]:
        """Why each failed recalibration fit is undefined (the cells as weighted rows)."""
        out = {}
        for k in failed_fits(counts, e):
            mine = (group == k) & (cells.n > 0)
            x = calibration_logit(cells.rep[cells.bin[mine]], self.clip)
            out[k] = (no_fit_reason(cells.label[mine], x, cells.n[mine])
                      or REASON_NO_CONVERGENCE)
        return out


def _fine_calibration(engine: CellEngine, tasks: Sequence[TaskCells], clip: float) -> None:
    """Fit the recalibration on the score bins themselves (one covariate per bin)."""
    nb = engine.reps.shape[1]
    x = np.zeros((len(tasks), nb))
    for t, cells in enumerate(tasks):
        occupied = np.bincount(cells.bin, weights=cells.n, minlength=nb) > 0
        occupied[cells.rep.size:] = False
        x[t, occupied] = calibration_logit(cells.rep[occupied[:cells.rep.size]], clip)
    engine.coarse_of = np.tile(np.arange(nb, dtype=np.int64), (len(tasks), 1))
    engine.n_coarse = nb
    engine.x_cal = x


def _estimates(engine: CellEngine, tasks: Sequence[TaskCells], slot_of: np.ndarray
               ) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """Replicate 0 (the cells' own counts): every metric and the DeLong variances.

    ``slot_of`` (groupings, strata): the group slot of every finest stratum.
    """
    n_t = len(tasks)
    stats = SuffStats.zeros(n_t, 1, n_slots=engine.n_slots)
    _cellboot.cell_replicates(
        np.zeros(1, dtype=np.uint64), engine.counts, 1, engine.task_lo, engine.bounds,
        engine.n, engine.code, engine.n_cells, *engine.plan, engine.width, engine.reps,
        engine.thr, engine.ece_bins, engine.refslot, engine.n_slots, engine.coarse_of,
        engine.n_coarse, engine.x_cal, engine.a0, engine.b0, True, stats.ints, stats.floats)
    est, var = [], []
    for t, cells in enumerate(tasks):
        st = stats.task(t)
        st.floats[0, F_DL10], st.floats[0, F_DL01] = _delong_sums(cells, slot_of,
                                                                  engine.n_slots)
        full = assemble(st, engine.refslot, engine.cohort_slots)
        dv = delong_variance(st)
        est.append([full[0, :, lo:hi] for lo, hi in itertools.pairwise(engine.offsets)])
        var.append([dv[0, lo:hi] for lo, hi in itertools.pairwise(engine.offsets)])
    return est, var


def _delong_sums(cells: TaskCells, slot_of: np.ndarray, n_slots: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``dl10`` and ``dl01`` of every group slot from its (bin, label) histogram."""
    nb = cells.rep.size
    hist = np.zeros((n_slots, nb, 2))
    for row in slot_of:
        slot = row[cells.stratum]
        np.add.at(hist, (slot, cells.bin, cells.label), cells.n.astype(np.float64))
    neg, pos = hist[:, :, 0], hist[:, :, 1]
    neg_below = np.cumsum(neg, axis=1) - neg
    pos_above = pos.sum(axis=1, keepdims=True) - np.cumsum(pos, axis=1)
    dl10 = (pos * (2.0 * neg_below + neg) ** 2).sum(axis=1)
    dl01 = (neg * (2.0 * pos_above + pos) ** 2).sum(axis=1)
    return dl10, dl01


class _CellEvaluator:
    """Evaluator whose replicates come from the cells (duck-typed for the bootstrap)."""

    def __init__(self, engine: CellEngine) -> None:
        self.skip: frozenset[str] = frozenset()
        self.sampler = None  # percentile intervals only: BCa's jackknife needs the rows
        self.calibration = True
        self._engine = engine

    def block_size(self, n_boot: int) -> int:
        """Replicates per :meth:`replicates` call (no row weights: large blocks)."""
        return max(2, min(n_boot, 256))

    def replicates(self, block: range) -> list[list[np.ndarray]]:
        """Metrics of replicates ``block``: ``[task][grouping] -> (R, len(EXTENDED), G)``."""
        return self._engine.replicates(block, calibration=self.calibration)
