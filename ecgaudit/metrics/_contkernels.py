"""Compiled (numba) bootstrap of continuous-outcome sufficient statistics.

Replicate ``b`` counts how often each resampling unit is drawn (the same picks as
:class:`ecgaudit.metrics._bootsample.Sampler`, via :func:`_drawkernels.pick`), then makes one
sequential pass over the rows adding ``count x`` the row's statistics (computed on the fly
from the shifted predicted and measured values, in the order of
:data:`ecgaudit.metrics._continuous.STATS`) to the row's finest stratum cell. Replicates
run in parallel threads; nothing of size ``B x n_rows`` is ever formed.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._drawkernels import pick
from ecgaudit.metrics._kernels import _pjit, prange

__all__ = ["cell_stats_boot"]


@_pjit
def cell_stats_boot(keys, slot_start, slot_size, unit_sorted, row_unit, xs, ys, cells,
                    n_cells, tol, has_tol, out):
    # out[b, c, s]: statistic s of cell c in replicate keys[b] (see the module docstring).
    n_units = slot_size.size
    n = xs.size
    for b in prange(keys.size):
        cnt = np.zeros(n_units, dtype=np.int32)
        key = keys[b]
        for j in range(n_units):
            cnt[unit_sorted[slot_start[j] + pick(key, j, slot_size[j])]] += 1
        acc = np.zeros((n_cells, 9))
        for i in range(n):
            w = cnt[row_unit[i]] if row_unit.size else cnt[i]
            if w == 0:
                continue
            x = xs[i]
            y = ys[i]
            d = x - y
            ad = abs(d)
            c = cells[i]
            acc[c, 0] += w
            acc[c, 1] += w * x
            acc[c, 2] += w * y
            acc[c, 3] += w * (x * x)
            acc[c, 4] += w * (y * y)
            acc[c, 5] += w * (x * y)
            acc[c, 6] += w * ad
            acc[c, 7] += w * ((d * d) * (d * d))
            if has_tol and ad <= tol:
                acc[c, 8] += w
        out[b] = acc
