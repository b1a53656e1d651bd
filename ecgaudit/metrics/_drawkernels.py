"""Compiled (numba) draws: replicate weights per row, and the pick of one slot.

Both make the same picks as the numpy path of :class:`ecgaudit.metrics._bootsample.Sampler`
(counter-based uniforms of :mod:`ecgaudit.metrics._hashrng`). The binned mode's fused kernel
(:mod:`ecgaudit.metrics._binfused`) calls :func:`pick` too; numba's on-disk cache of every
kernel module is dropped when any of them changes (``_kernels._drop_stale_cache``).
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics import _hashrng
from ecgaudit.metrics._compile import _ijit, _pjit, prange

__all__ = ["draw_weights", "pick"]

# The stream's own functions, compiled (the same source as the numpy path's).
_counter = _ijit(_hashrng.slot_counter)
_mix64 = _ijit(_hashrng.mix64)
_to_unit = _ijit(_hashrng.to_unit)


@_ijit
def pick(key, j, m):
    """Return the unit drawn by slot ``j`` of ``m``: ``min(floor(u m), m - 1)``."""
    u = _to_unit(_mix64(_counter(key, np.uint64(j + 1))))
    k = int(u * m)
    return m - 1 if k > m - 1 else k


@_pjit
def draw_weights(keys, slot_start, slot_size, unit_sorted, row_unit, n_rows, out):
    # out[r, i] = how often row i's unit was drawn in replicate keys[r] (see _hashrng).
    n_units = slot_size.size
    for r in prange(keys.size):
        cnt = np.zeros(n_units, dtype=np.int32)
        key = keys[r]
        for j in range(n_units):
            cnt[unit_sorted[slot_start[j] + pick(key, j, slot_size[j])]] += 1
        if row_unit.size:
            for i in range(n_rows):
                out[r, i] = cnt[row_unit[i]]
        else:
            for i in range(n_rows):
                out[r, i] = cnt[i]
