"""The small-cell predicates and the one place the threshold is read from a result.

A *small cell* is a count between 1 and ``k - 1`` (default ``k = 11``, so 1-10): it may
single out people. Zero is not a small cell (it identifies nobody) and neither is any count
of ``k`` or more. Group sizes count **patients** (or ECGs when no ``patient_column`` is
configured); event counts (positives, true/false positives and negatives) count ECGs.

Two predicates, on purpose:

* :func:`is_small_cell` (``1 <= count < k``): may this *count* be published? Used for every
  suppression decision (groups, events, confusion cells, the paired comparison).
* :func:`too_small_to_draw` (``count < k``): is this group too small to draw a curve for?
  An empty group is not a privacy risk but has nothing to draw either (curves, agreement
  plots).

``disparity._controlled`` keeps its own ``>= k`` stratum rule (a stratum is usable when the
group and the reference both have at least ``k`` rows): ``disparity`` sits below
``privacy`` in the layers, so it receives ``k`` as an argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ecgaudit.config import AuditConfig

__all__ = ["DEFAULT_MIN_CELL", "is_small_cell", "min_cell_size_of", "too_small_to_draw"]

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


def too_small_to_draw(count: ArrayLike, k: int) -> np.ndarray:
    """Return whether each group is too small to draw a curve for: ``count < k``.

    Unlike :func:`is_small_cell`, an empty group (count 0) is too small as well.

    Parameters
    ----------
    count : array_like of int or float
        Group sizes (patients).
    k : int
        ``min_cell_size``.

    Returns
    -------
    numpy.ndarray of bool
    """
    c = np.asarray(count, dtype=float)
    with np.errstate(invalid="ignore"):
        return c < k


def min_cell_size_of(source: Any) -> int:
    """Return the ``min_cell_size`` an audit ran with.

    Parameters
    ----------
    source : AuditResult, AuditConfig or mapping, optional
        A result (its typed ``config`` is read), a config, or a manifest mapping (its
        ``config`` entry: hand-built results whose manifest holds a partial config).

    Returns
    -------
    int
        The configured value, or the config default when none is recorded.
    """
    config = getattr(source, "config", source)
    if isinstance(config, AuditConfig):
        return int(config.min_cell_size)
    manifest = getattr(source, "manifest", source)
    cfg = manifest.get("config") if isinstance(manifest, Mapping) else None
    value = cfg.get("min_cell_size") if isinstance(cfg, Mapping) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1:
        return int(value)
    return DEFAULT_MIN_CELL
