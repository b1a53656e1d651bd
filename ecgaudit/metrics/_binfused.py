"""The binned bootstrap's replicates in one compiled pass per replicate (cache-resident).

:func:`binned_replicates` runs, per replicate and in one thread, every step of the binned
mode that :class:`ecgaudit.metrics._binned.BinnedEngine` used to run as separate batched
kernels: the draws, the stratum cells of every task, the group cells, the scan and the
recalibration fit. Its buffers (a few MB per thread) are allocated once per thread and stay
in the CPU cache; nothing of size ``replicates x cells`` is ever written to memory.

The draws are *counted* instead of applied one by one: the picks of a replicate first fill
a count per sampler slot (one byte each), then one sequential sweep per task adds every
slot's count to the cells of its rows. The cell counts are the same integers as adding the
picks one at a time (integer sums do not depend on order), so the statistics are
bit-identical to the unfused path (tested). A slot drawn more than ``cap`` times (255: the
counts are bytes) keeps its extra draws in an overflow list that is added pick by pick.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._binkernels import coarsen_one, marginalize_one, scan_one
from ecgaudit.metrics._drawkernels import pick
from ecgaudit.metrics._kernels import _calibrate, _jit, _pjit, prange

__all__ = ["CAP", "binned_replicates"]

#: Draws of one slot counted in its byte; further draws go to the overflow list.
CAP = 255


@_pjit
def binned_replicates(keys, n_chunks, cap, slot_start, slot_size, ptr, codes, n_cells, kinds,
                      srcs, dsts, width, reps, thr, ece_bins, refslot, allslot, coarse_of, n_coarse,
                      item_y, item_f, item_x, ident, a0, b0, calibration, ist_out, fst_out):
    """Statistics of replicates ``keys`` of every task; ``n_chunks`` threads' worth of work.

    ``codes[t, i]`` is the (stratum, bin, label) cell of task ``t`` of the ``i``-th row in
    slot order (``ptr`` the CSR row ranges of the slots, empty for one row per slot), of
    ``n_cells`` cells per task.
    ``kinds, srcs, dsts`` is the plan of
    :func:`ecgaudit.metrics._binkernels.marginal_plan`; ``reps[t]`` the bins' scores;
    ``coarse_of[t]`` the coarse bin of each bin, ``item_*`` the coarse items' labels, groups
    and covariates (``item_x[t]``); ``a0, b0`` (T, S) start the fits. Outputs ``ist_out``
    (T, R, 9, S) and ``fst_out`` (T, R, 8, S), zeroed by the caller.
    """
    n_r = keys.size
    n_t = codes.shape[0]
    n_units = slot_size.size
    n_s = ist_out.shape[3]
    n_items = item_y.size
    for ch in prange(n_chunks):
        cnt = np.empty(n_units, dtype=np.uint8)
        ovf = np.empty(n_units, dtype=np.int64)
        acc = np.empty(n_cells, dtype=np.int32)
        cells = np.empty((n_s + 1) * width, dtype=np.int32)
        coarse = np.empty(n_items, dtype=np.int32)
        ws = np.empty(n_items, dtype=np.int64)
        for r in range(ch * n_r // n_chunks, (ch + 1) * n_r // n_chunks):
            key = keys[r]
            cnt[:] = 0
            n_ovf = 0
            for j in range(n_units):
                s = slot_start[j] + pick(key, j, slot_size[j])
                c = cnt[s]
                if c == cap:
                    ovf[n_ovf] = s
                    n_ovf += 1
                else:
                    cnt[s] = c + 1
            for t in range(n_t):
                ct = codes[t]
                acc[:] = 0
                if ptr.size == 0:  # one row per slot
                    for s in range(n_units):
                        acc[ct[s]] += cnt[s]
                    for e in range(n_ovf):
                        acc[ct[ovf[e]]] += 1
                else:
                    for s in range(n_units):
                        c = cnt[s]
                        if c:
                            for i in range(ptr[s], ptr[s + 1]):
                                acc[ct[i]] += c
                    for e in range(n_ovf):
                        for i in range(ptr[ovf[e]], ptr[ovf[e] + 1]):
                            acc[ct[i]] += 1
                marginalize_one(acc, kinds, srcs, dsts, width, cells)
                ist = ist_out[t, r]
                fst = fst_out[t, r]
                scan_one(cells, reps[t], thr[t], ece_bins, refslot, allslot, ist, fst)
                if not calibration:
                    fst[4, :] = np.nan
                    fst[5, :] = np.nan
                    continue
                coarsen_one(cells, n_s, coarse_of[t], n_coarse, coarse)
                for i in range(n_items):
                    ws[i] = coarse[i]
                _fit_items(ws, item_y, item_f, item_x[t], ident, a0[t], b0[t], fst)


@_jit
def _fit_items(ws, ys, fs, xs, ident, a0, b0, fst):
    # The recalibration fit of every group from its coarse cells (as task_stats on items).
    n_s = a0.size
    n_g = np.zeros(n_s, dtype=np.int64)
    p_g = np.zeros(n_s, dtype=np.int64)
    lo1 = np.full(n_s, np.inf)
    hi1 = np.full(n_s, -np.inf)
    lo0 = np.full(n_s, np.inf)
    hi0 = np.full(n_s, -np.inf)
    for i in range(ws.size):
        w = ws[i]
        if w == 0:
            continue
        g = fs[i]
        x = xs[i]
        n_g[g] += w
        if ys[i]:
            p_g[g] += w
            lo1[g] = min(lo1[g], x)
            hi1[g] = max(hi1[g], x)
        else:
            lo0[g] = min(lo0[g], x)
            hi0[g] = max(hi0[g], x)
    active = (p_g > 0) & (n_g > p_g) & (hi0 > lo1) & (hi1 > lo0)
    a = np.zeros(n_s)
    b = np.ones(n_s)
    for g in range(n_s):
        if np.isfinite(a0[g]) and np.isfinite(b0[g]):
            a[g] = a0[g]
            b[g] = b0[g]
    _calibrate(ws, ys, xs, fs, ident, active, a, b)
    fst[4, :] = a
    fst[5, :] = b
