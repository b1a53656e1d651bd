"""Bootstrap replicates of a pooled-summary audit from the sites' replicate cells.

The one adapter between summaries and the metric engines: the audit's own evaluator (built
on the expanded ECG rows of :mod:`ecgaudit.pipeline._fromsummaries`) computes each
replicate's metrics from explicit row weights. Replicate ``k``'s weight of a task's cell is
the sum, over the sites, of the Poisson(1) weights of its ECGs (column ``r:<k>``; hashed
from the patient id, so one patient's ECGs share a weight wherever they sit): it is put on
the cell's first expanded row, and every metric of the task depends on the rows only
through its cells, so the replicate is the pooled patient-clustered Poisson bootstrap on
the binned scores. The tasks share the expanded rows but not their cells, so each task is
evaluated with its own weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["SummaryReplicates"]


class SummaryReplicates:
    """Duck-typed evaluator whose replicates come from summary replicate cells.

    Parameters
    ----------
    evaluator : Evaluator
        The audit session's evaluator (point estimates, row-weighted metrics).
    starts : sequence of ndarray of int64
        Per task: the first expanded row of each of its cells.
    counts : sequence of ndarray of int32, shape (n_cells, B)
        Per task: every cell's replicate weights.
    """

    def __init__(self, evaluator: Any, starts: Sequence[np.ndarray],
                 counts: Sequence[np.ndarray]) -> None:
        self._ev = evaluator
        self.skip = evaluator.skip
        self.sampler = evaluator.sampler
        self._starts = [np.asarray(s, dtype=np.int64) for s in starts]
        self._counts = [np.asarray(c, dtype=np.int32) for c in counts]
        self._n = int(evaluator.sampler.n_rows)

    def block_size(self, n_boot: int) -> int:
        """Replicates per :meth:`replicates` call (``block x rows`` weights, about 32 MB)."""
        return max(1, min(n_boot, (1 << 23) // max(self._n, 1)))

    def replicates(self, block: range) -> list[list[np.ndarray]]:
        """Metrics of replicates ``block``: ``[task][grouping] -> (R, len(EXTENDED), G)``."""
        out = []
        for t, (starts, counts) in enumerate(zip(self._starts, self._counts)):
            w = np.zeros((len(block), self._n), dtype=np.int32)
            w[:, starts] = counts[:, block.start:block.stop].T
            out.append(self._ev.weighted(w)[t])
        return out

    def weighted(self, w: np.ndarray) -> list[list[np.ndarray]]:
        """Row-weighted metrics (not used by percentile intervals)."""
        return self._ev.weighted(w)

    def centres(self) -> list[list[np.ndarray]]:
        """Unit-weight metrics."""
        return self._ev.centres()
