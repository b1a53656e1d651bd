"""Stratified, optionally patient-clustered, seeded replicate weights (see ``_bootstrap``).

Replicate ``b`` draws, in every stratum of ``m`` units, ``m`` units uniformly with
replacement: the unit in slot ``j`` (units sorted by stratum) picks unit
``start + min(floor(u(seed, b, j) * m), m - 1)`` of its stratum, with the counter-based
uniforms of :mod:`ecgaudit.metrics._hashrng`. The compiled and numpy implementations give
identical weights, and replicate ``b`` does not depend on batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ecgaudit.metrics import _drawkernels, _kernels
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._hashrng import replicate_keys, splitmix64, uniforms

__all__ = ["Sampler", "replicate_weights"]


class _HasCodes(Protocol):
    codes: np.ndarray


class Sampler:
    """Draws stratified (optionally clustered) replicate weights.

    Parameters
    ----------
    strata : ndarray of int
        Stratum of every row.
    patient : ndarray, optional
        Patient id per row; a patient is drawn with all its rows and belongs to the stratum
        of its first row.
    seed : int
        Seed.
    compiled : bool, optional
        Use the compiled draw kernel (default: when numba is installed).
    """

    def __init__(self, strata: np.ndarray, patient: np.ndarray | None, seed: int,
                 compiled: bool | None = None) -> None:
        n = strata.size
        if patient is None:
            self.row_unit: np.ndarray | None = None
            unit_stratum = strata
        else:
            _, first, inverse = np.unique(
                np.asarray(patient), return_index=True, return_inverse=True
            )
            self.row_unit = np.asarray(inverse, dtype=np.int64).reshape(-1)
            unit_stratum = strata[first]
        self.n_rows = n
        self.n_units = unit_stratum.size
        self.unit_sorted = np.argsort(unit_stratum, kind="stable").astype(np.int64)
        sizes = np.bincount(unit_stratum)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        s_sorted = unit_stratum[self.unit_sorted]
        self.slot_start = starts[s_sorted].astype(np.int64)
        self.slot_size = sizes[s_sorted].astype(np.int64)
        self.seed = int(seed) % 2**63
        self.compiled = _kernels.HAVE_NUMBA if compiled is None else bool(compiled)

    def draw(self, replicates: range) -> np.ndarray:
        """Row weights of the given replicates, shape ``(len(replicates), n_rows)``."""
        keys = replicate_keys(self.seed, replicates)
        out = np.empty((len(replicates), self.n_rows), dtype=np.int32)
        if self.compiled:
            row_unit = np.zeros(0, np.int64) if self.row_unit is None else self.row_unit
            _drawkernels.draw_weights(keys, self.slot_start, self.slot_size, self.unit_sorted,
                                  row_unit, self.n_rows, out)
            return out
        for i, key in enumerate(keys):
            u = uniforms(key, self.n_units)
            pick = np.minimum((u * self.slot_size).astype(np.int64), self.slot_size - 1)
            counts = np.bincount(self.unit_sorted[self.slot_start + pick],
                                 minlength=self.n_units)
            out[i] = counts if self.row_unit is None else counts[self.row_unit]
        return out

    def jackknife(self, n_blocks: int) -> np.ndarray:
        """Delete-a-block jackknife weights, shape ``(J, n_rows)``."""
        j = max(2, min(n_blocks, self.n_units))
        rng = np.random.default_rng(splitmix64(self.seed))
        block = rng.permutation(self.n_units) % j
        counts = (block[None, :] != np.arange(j)[:, None]).astype(np.int32)
        return counts if self.row_unit is None else counts[:, self.row_unit]


def replicate_weights(
    groupings: Sequence[_HasCodes], n_rows: int, *, n_boot: int, seed: int,
    patient: np.ndarray | None = None, compiled: bool | None = None,
) -> np.ndarray:
    """Return the row weights of replicates ``0..n_boot-1`` (for tests and diagnostics).

    Parameters
    ----------
    groupings : sequence of Grouping
        Groupings whose intersection defines the strata.
    n_rows : int
        Number of rows.
    n_boot : int
        Number of replicates.
    seed : int
        Seed.
    patient : ndarray, optional
        Patient id per row (clustered resampling).
    compiled : bool, optional
        Use the compiled kernel (default: when numba is installed); both give the same
        weights.

    Returns
    -------
    ndarray of int32, shape (n_boot, n_rows)
    """
    strata = finest_strata([g.codes for g in groupings], n_rows)
    return Sampler(strata.codes, patient, seed, compiled).draw(range(n_boot))
