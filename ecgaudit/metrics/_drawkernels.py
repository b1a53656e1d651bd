"""Compiled (numba) draws: replicate weights per row, or straight into cell counts.

Both kernels make the same picks as the numpy path of
:class:`ecgaudit.metrics._bootsample.Sampler` (counter-based uniforms of
:mod:`ecgaudit.metrics._hashrng`). They live in one module with :func:`pick` so that numba's
on-disk cache of the callers is invalidated whenever the draw changes.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._kernels import _ijit, _pjit, prange

__all__ = ["draw_cells", "draw_weights", "pick"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)


@_ijit
def pick(key, j, m):
    """Return the unit drawn by slot ``j`` of ``m``: ``min(floor(u m), m - 1)``."""
    z = np.uint64(j + 1) * _GOLDEN + key
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    z = z ^ (z >> _S31)
    u = float(z >> _S11) * 2.0**-53
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



@_pjit
def draw_cells(keys, slot_start, slot_size, ptr, cells, out):
    # cells[t, ptr[s]:ptr[s + 1]]: cell of every row of the unit in slot s, for task t
    # (ptr empty: one row per unit, cells[t, s]). out is zeroed here (it is reused).
    # The picks of a replicate are drawn first, then added task by task (cache-friendly).
    n_units = slot_size.size
    n_t = cells.shape[0]
    for r in prange(keys.size):
        key = keys[r]
        picks = np.empty(n_units, dtype=np.int64)
        for j in range(n_units):
            picks[j] = slot_start[j] + pick(key, j, slot_size[j])
        for t in range(n_t):
            acc = out[r, t]
            acc[:] = 0
            ct = cells[t]
            if ptr.size == 0:  # one row per unit
                for j in range(n_units):
                    acc[ct[picks[j]]] += 1
            else:
                for j in range(n_units):
                    s = picks[j]
                    for i in range(ptr[s], ptr[s + 1]):
                        acc[ct[i]] += 1
