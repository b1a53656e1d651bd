"""Bootstrap replicates of a pooled-summary audit, drawn or given per cell.

The one adapter between summaries and the metric engines. The audit session's evaluator
(built on the expanded rows of :mod:`ecgaudit.pipeline._fromsummaries`) gives the point
estimates; its replicates are replaced by those of a
:class:`ecgaudit.metrics._cellengine.CellEngine` on the pooled cells, whose cost depends on
the number of cells, not of ECGs:

* summaries **without** replicate columns (engine summaries, ``summarize`` without
  ``--replicates``): each replicate's cell counts are drawn as the stratified multinomial
  of the row bootstrap (every finest stratum, site included, keeps its ECG count; each ECG
  its own unit), equal in distribution to the row-level bootstrap of the expanded ECGs;
* summaries **with** replicate columns: replicate ``k``'s count of a cell is the sum over
  the sites of ``r:<k>`` (the Poisson(1) weights hashed from the patient id, so one
  patient's ECGs share a weight wherever they sit): the pooled patient-clustered Poisson
  bootstrap.

The replicates score every bin at the summaries' pooled bin mean (the expanded rows'
score), on the summaries' own grid: no second quantisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecgaudit.metrics._cellengine import CellEngine, TaskCells

__all__ = ["CellReplicates"]


class CellReplicates:
    """Evaluator whose replicates come from the pooled cells (duck-typed for the bootstrap).

    Parameters
    ----------
    session : MetricSession
        The audit session (groupings, strata and point estimates of the expanded rows).
    tasks : sequence of TaskCells
        Every task's cells, ``stratum`` holding the cell's first expanded row (mapped here
        to the session's finest stratum).
    clip, ece_bins
        The config's calibration settings.
    """

    def __init__(self, session: Any, tasks: Sequence[TaskCells], clip: float,
                 ece_bins: int) -> None:
        ev = session.evaluator
        self.skip = ev.skip
        seed = ev.sampler.seed
        #: No row sampler: percentile intervals only (BCa's jackknife needs the rows), so
        #: the session's row sampler is not kept alive.
        self.sampler = None
        self._calibration = ev.calibration
        strata = np.asarray(session._strata.codes, dtype=np.int64)
        n_fine = int(strata.max()) + 1 if strata.size else 1
        first = np.zeros(n_fine, dtype=np.int64)
        first[strata[::-1]] = np.arange(strata.size)[::-1]
        codes = [np.asarray(g.codes, dtype=np.int64)[first] for g in session.groupings]
        mapped = [TaskCells(strata[t.stratum], t.bin, t.label, t.n, t.rep, t.threshold,
                            t.counts) for t in tasks]
        self._engine = CellEngine(mapped, codes, [len(g.groups) for g in session.groupings],
                                  [g.reference for g in session.groupings], seed=seed,
                                  clip=clip, ece_bins=ece_bins, starts=ev.starts)
        # The point estimates are in: the session's per-row strata (int64, 8 bytes per ECG)
        # are not needed again (the replicates come from the cells).
        session._strata = None

    def block_size(self, n_boot: int) -> int:
        """Replicates per :meth:`replicates` call (no row weights: large blocks)."""
        return max(2, min(n_boot, 256))

    def replicates(self, block: range) -> list[list[np.ndarray]]:
        """Metrics of replicates ``block``: ``[task][grouping] -> (R, len(EXTENDED), G)``."""
        return self._engine.replicates(block, calibration=self._calibration)

    def weighted(self, w: np.ndarray) -> list[list[np.ndarray]]:
        """Row weights (a jackknife) are not defined on cells."""
        raise NotImplementedError("summaries' replicates give percentile intervals only")

    def centres(self) -> list[list[np.ndarray]]:
        """Not defined on cells (BCa only; refused for summaries)."""
        raise NotImplementedError("summaries' replicates give percentile intervals only")
