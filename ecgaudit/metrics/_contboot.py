"""Continuous outcomes by group: point statistics and the bootstrap, from one set of sums.

Rows are pooled into the finest strata (the intersection of every grouping, as in the
binary bootstrap); a group's statistics are the sums over its strata. A replicate draws
the same units as the binary bootstrap with the same seed
(:class:`ecgaudit.metrics._bootsample.Sampler`: stratified, clustered by patient when
given) and sums ``count x`` row statistics per stratum (compiled kernel
:func:`ecgaudit.metrics._contkernels.cell_stats_boot`, or a numpy weight matrix), so
estimates and replicates share :func:`ecgaudit.metrics._continuous.metric_values`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecgaudit.metrics._bootci import (
    bca_limits,
    bootstrap_p_value,
    degenerate_share,
    jackknife_acceleration,
    percentile_limits,
)
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._continuous import STATS, metric_values, sufficient_stats
from ecgaudit.metrics._hashrng import replicate_keys

__all__ = ["BootLimits", "ContinuousSample", "bootstrap_p_value", "limits"]

#: Replicates evaluated per block (bounds memory: block x strata x statistics).
BLOCK = 256


@dataclass(frozen=True)
class BootLimits:
    """Bootstrap limits of one grouping's metrics, shape ``(G, M)`` each."""

    low: np.ndarray
    high: np.ndarray
    degenerate: np.ndarray


class ContinuousSample:
    """One continuous task over a set of groupings, ready for estimates and replicates.

    Parameters
    ----------
    measured, predicted : ndarray of float
        Measured and predicted values (finite).
    codes : sequence of ndarray of int
        Group code per row of every grouping.
    n_groups : sequence of int
        Number of groups of every grouping.
    tolerance : float, optional
        Clinical tolerance on ``|predicted - measured|``.
    patient : ndarray, optional
        Patient index per row (clustered resampling).
    seed : int
        Bootstrap seed (the same seed draws the same units as the binary bootstrap).
    compiled : bool, optional
        Use the compiled kernel (default: when numba is installed).
    """

    def __init__(self, measured: np.ndarray, predicted: np.ndarray,
                 codes: Sequence[np.ndarray], n_groups: Sequence[int], *,
                 tolerance: float | None = None, patient: np.ndarray | None = None,
                 seed: int = 0, compiled: bool | None = None) -> None:
        y = np.asarray(measured, dtype=np.float64)
        x = np.asarray(predicted, dtype=np.float64)
        self.shift = float(np.mean(y)) if y.size else 0.0
        self.tolerance = tolerance
        self.xs, self.ys = x - self.shift, y - self.shift
        strata = finest_strata(list(codes), y.size)
        self.cells = strata.codes
        self.n_cells = strata.n_strata
        first = np.zeros(self.n_cells, dtype=np.int64)
        first[self.cells[::-1]] = np.arange(y.size - 1, -1, -1)
        self.maps = [np.asarray(c, dtype=np.int64)[first] for c in codes]
        self.n_groups = [int(g) for g in n_groups]
        self.row_stats = sufficient_stats(y, x, tolerance, self.shift)
        self.sampler = Sampler(self.cells, patient, seed, compiled)
        self.compiled = self.sampler.compiled
        self._sorted: tuple[np.ndarray, ...] | None = None

    def _cells_weighted(self, weights: np.ndarray) -> np.ndarray:
        out = np.zeros((weights.shape[0], self.n_cells, len(STATS)))
        order = np.argsort(self.cells, kind="stable")
        bounds = np.searchsorted(self.cells[order], np.arange(self.n_cells + 1))
        for c in range(self.n_cells):
            rows = order[bounds[c]:bounds[c + 1]]
            out[:, c, :] = weights[:, rows].astype(np.float64) @ self.row_stats[rows]
        return out

    def cell_stats(self) -> np.ndarray:
        """Return the summed statistics of every stratum, shape ``(n_cells, len(STATS))``."""
        return self._cells_weighted(np.ones((1, self.cells.size), dtype=np.int32))[0]

    def _replicate_cells(self, block: range) -> np.ndarray:
        if not self.compiled:
            return self._cells_weighted(self.sampler.draw(block))
        from ecgaudit.metrics._contkernels import cell_stats_boot, strata_stats_boot

        s = self.sampler
        out = np.empty((len(block), self.n_cells, len(STATS)))
        tol = float(self.tolerance) if self.tolerance is not None else 0.0
        if s.row_unit is None:  # rows = units: one pass per stratum, sums in registers
            if self._sorted is None:
                order = s.unit_sorted
                starts = np.searchsorted(self.cells[order], np.arange(self.n_cells))
                sizes = np.diff(np.append(starts, order.size))
                self._sorted = (starts.astype(np.int64), sizes.astype(np.int64),
                                np.ascontiguousarray(self.xs[order]),
                                np.ascontiguousarray(self.ys[order]))
            starts, sizes, xs, ys = self._sorted
            strata_stats_boot(replicate_keys(s.seed, block), starts, sizes, xs, ys, tol,
                              self.tolerance is not None, out)
            return out
        cell_stats_boot(replicate_keys(s.seed, block), s.slot_start, s.slot_size,
                        s.unit_sorted, s.row_unit, self.xs, self.ys, self.cells,
                        self.n_cells, tol, self.tolerance is not None, out)
        return out

    def group_stats(self, cells: np.ndarray) -> list[np.ndarray]:
        """Sum stratum statistics ``(..., n_cells, S)`` into every grouping's groups."""
        out = []
        for cmap, n_g in zip(self.maps, self.n_groups):
            onehot = np.zeros((self.n_cells, n_g))
            onehot[np.arange(self.n_cells), cmap] = 1.0
            out.append(np.einsum("...ks,kg->...gs", cells, onehot))
        return out

    def replicates(self, n_boot: int) -> list[np.ndarray]:
        """Metric replicates per grouping, each of shape ``(n_boot, G, M)``."""
        reps: list[list[np.ndarray]] = [[] for _ in self.maps]
        for start in range(0, n_boot, BLOCK):
            cells = self._replicate_cells(range(start, min(n_boot, start + BLOCK)))
            for k, gs in enumerate(self.group_stats(cells)):
                reps[k].append(metric_values(gs, self.shift))
        return [np.concatenate(r, axis=0) for r in reps]

    def jackknife(self, n_blocks: int = 100) -> list[np.ndarray]:
        """Delete-a-block jackknife metric estimates per grouping, shape ``(J, G, M)``."""
        cells = self._cells_weighted(self.sampler.jackknife(n_blocks))
        return [metric_values(gs, self.shift) for gs in self.group_stats(cells)]


def limits(reps: np.ndarray, est: np.ndarray, level: float, method: str,
           jack: np.ndarray | None = None) -> BootLimits:
    """Percentile or BCa limits of replicates ``(B, ...)`` and their degenerate share.

    Parameters
    ----------
    reps : ndarray, shape (B, ...)
        Replicates; ``nan`` marks a degenerate replicate.
    est : ndarray
        Point estimates (for BCa).
    level : float
        Confidence level.
    method : {"percentile", "bca"}
        Interval method.
    jack : ndarray, optional
        Jackknife estimates ``(J, ...)`` (BCa acceleration).

    Returns
    -------
    BootLimits
    """
    if method == "bca" and jack is not None:
        lo, hi = bca_limits(reps, est, jackknife_acceleration(jack), level)
    else:
        lo, hi = percentile_limits(reps, level)
    return BootLimits(lo, hi, degenerate_share(reps))

