"""Stratified, optionally patient-clustered, seeded replicate weights (see ``_bootstrap``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ecgaudit.metrics._cells import finest_strata

__all__ = ["Sampler", "replicate_weights"]


class _HasCodes(Protocol):
    codes: np.ndarray


class Sampler:
    """Draws stratified (optionally clustered) replicate weights."""

    def __init__(self, strata: np.ndarray, patient: np.ndarray | None, seed: int) -> None:
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
        self.unit_sorted = np.argsort(unit_stratum, kind="stable")
        sizes = np.bincount(unit_stratum)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        s_sorted = unit_stratum[self.unit_sorted]
        self.slot_start = starts[s_sorted]
        self.slot_size = sizes[s_sorted]
        self.seed = int(seed) % 2**63

    def _to_rows(self, unit_counts: np.ndarray) -> np.ndarray:
        return unit_counts if self.row_unit is None else unit_counts[:, self.row_unit]

    def draw(self, replicates: range) -> np.ndarray:
        """Row weights of the given replicates, shape ``(len(replicates), n_rows)``."""
        counts = np.zeros((len(replicates), self.n_units), dtype=np.int32)
        for i, b in enumerate(replicates):
            rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(0, b)))
            u = rng.random(self.n_units)
            pick = np.minimum((u * self.slot_size).astype(np.int64), self.slot_size - 1)
            drawn = np.bincount(self.slot_start + pick, minlength=self.n_units)
            counts[i, self.unit_sorted] = drawn
        return self._to_rows(counts)

    def jackknife(self, n_blocks: int) -> np.ndarray:
        """Delete-a-block jackknife weights, shape ``(J, n_rows)``."""
        j = max(2, min(n_blocks, self.n_units))
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(1,)))
        block = rng.permutation(self.n_units) % j
        counts = (block[None, :] != np.arange(j)[:, None]).astype(np.int32)
        return self._to_rows(counts)


def replicate_weights(
    groupings: Sequence[_HasCodes], n_rows: int, *, n_boot: int, seed: int,
    patient: np.ndarray | None = None,
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

    Returns
    -------
    ndarray of int32, shape (n_boot, n_rows)
    """
    strata = finest_strata([g.codes for g in groupings], n_rows)
    return Sampler(strata.codes, patient, seed).draw(range(n_boot))
