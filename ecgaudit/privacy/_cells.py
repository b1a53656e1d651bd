"""The one small-cell predicate and the one place the threshold is read from a result.

A *small cell* is a count between 1 and ``k - 1`` (default ``k = 11``, so 1-10): it may
single out people. Zero is not a small cell (it identifies nobody) and neither is any count
of ``k`` or more. Group sizes count **patients** (or ECGs when no ``patient_column`` is
configured); event counts (positives, true/false positives and negatives) count ECGs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ecgaudit.config import AuditConfig

__all__ = ["DEFAULT_MIN_CELL", "is_small_cell", "min_cell_size_of"]

#: The configured default of ``min_cell_size`` (read from the config model, never re-typed).
DEFAULT_MIN_CELL: int = int(AuditConfig.model_fields["min_cell_size"].default)


def is_small_cell(count: ArrayLike, k: int) -> np.ndarray:
    """Return whether each count is a small cell: ``1 <= count < k``.

    Parameters
    ----------
    count : array_like of int or float
        Counts (NaN / missing counts are never small: they are not published).
    k : int
        The minimum publishable cell size (``min_cell_size``).

    Returns
    -------
    numpy.ndarray of bool
        Same shape as ``count``.
    """
    c = np.asarray(count, dtype=float)
    with np.errstate(invalid="ignore"):
        return (c > 0) & (c < k)


def min_cell_size_of(manifest: Mapping[str, Any] | None) -> int:
    """Return the ``min_cell_size`` an audit ran with, from its manifest.

    Parameters
    ----------
    manifest : mapping, optional
        ``AuditResult.manifest`` (its ``config`` holds the resolved audit config).

    Returns
    -------
    int
        The configured value, or the config default when the manifest does not record one.
    """
    cfg = (manifest or {}).get("config") if isinstance(manifest, Mapping) else None
    value = cfg.get("min_cell_size") if isinstance(cfg, Mapping) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1:
        return int(value)
    return DEFAULT_MIN_CELL
