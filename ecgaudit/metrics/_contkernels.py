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

__all__ = ["cell_stats_boot", "strata_stats_boot"]


@_pjit
def cell_stats_boot(keys, slot_start, slot_size, unit_sorted, row_unit, xs, ys, cells,
                    n_cells, tol, has_tol, out):
    # Clustered case: out[b, c, s] = statistic s of cell c in replicate keys[b].
    n_units = slot_size.size
    n = xs.size
    for b in prange(keys.size):
        cnt = np.zeros(n_units, dtype=np.int32)
        key = keys[b]
        for j in range(n_units):
            cnt[unit_sorted[slot_start[j] + pick(key, j, slot_size[j])]] += 1
        acc = np.zeros((n_cells, 9))
        for i in range(n):
            w = cnt[row_unit[i]]
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


@_pjit
def strata_stats_boot(keys, starts, sizes, xs, ys, tol, has_tol, out):
    # Unclustered case, rows sorted by stratum (stratum c = rows starts[c]:starts[c]+sizes[c],
    # slot order of the Sampler): out[b, c, s] = statistic s of stratum c in replicate b.
    n_s = sizes.size
    biggest = 0
    for c in range(n_s):
        biggest = max(biggest, sizes[c])
    for b in prange(keys.size):
        key = keys[b]
        cnt = np.zeros(biggest, dtype=np.int32)
        for c in range(n_s):
            start = starts[c]
            m = sizes[c]
            for j in range(m):
                cnt[j] = 0
            for j in range(m):
                cnt[pick(key, start + j, m)] += 1
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = 0.0
            for j in range(m):
                w = cnt[j]
                if w == 0:
                    continue
                x = xs[start + j]
                y = ys[start + j]
                d = x - y
                ad = abs(d)
                s0 += w
                s1 += w * x
                s2 += w * y
                s3 += w * (x * x)
                s4 += w * (y * y)
                s5 += w * (x * y)
                s6 += w * ad
                s7 += w * ((d * d) * (d * d))
                if has_tol and ad <= tol:
                    s8 += w
            out[b, c, 0] = s0
            out[b, c, 1] = s1
            out[b, c, 2] = s2
            out[b, c, 3] = s3
            out[b, c, 4] = s4
            out[b, c, 5] = s5
            out[b, c, 6] = s6
            out[b, c, 7] = s7
            out[b, c, 8] = s8
