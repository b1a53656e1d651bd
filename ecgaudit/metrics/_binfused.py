"""The binned bootstrap's replicates in one compiled pass per replicate (cache-resident).

:func:`binned_replicates` runs, per replicate and in one thread, every step of the binned
mode that :class:`ecgaudit.metrics._binned.BinnedEngine` used to run as separate batched
kernels: the draws, the stratum cells of every task, the group cells, the scan and the
recalibration fit. Its buffers (a few MB per thread) are allocated once per thread and stay
in the CPU cache; nothing of size ``replicates x cells`` is ever written to memory.

The draws are *counted* instead of applied one by one: the picks of a replicate first fill
a count per sampler slot (one byte each), then one sequential sweep per task adds every
slot's count to the cells of its rows (without patient clusters both steps go stratum by
stratum, :mod:`ecgaudit.metrics._binsweep`). The cell counts are the same integers as adding the
picks one at a time (integer sums do not depend on order), so the statistics are
bit-identical to the unfused path (tested). A slot drawn more than ``cap`` times (255: the
counts are bytes) keeps its extra draws in an overflow list that is added pick by pick.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics import _newton as nt
from ecgaudit.metrics._binkernels import _rjit, marginalize_one, scan_coarsen_one, scan_one
from ecgaudit.metrics._binsweep import draw_sweep
from ecgaudit.metrics._drawkernels import pick
from ecgaudit.metrics._kernels import _jit, _pjit, prange

__all__ = ["CAP", "binned_replicates", "exp_neg", "finish_task", "fit_cells", "fit_coarse",
           "fit_vectorised"]

#: Draws of one slot counted in its byte; further draws go to the overflow list.
CAP = 255


@_pjit
def binned_replicates(keys, n_chunks, cap, slot_start, slot_size, ptr, codes, runs, n_cells,
                      kinds, srcs, dsts, width, reps, thr, ece_bins, refslot, allslot, coarse_of,
                      n_coarse, x_cal, a0, b0, calibration, ist_out, fst_out):
    """Statistics of replicates ``keys`` of every task; ``n_chunks`` threads' worth of work.

    ``codes[t, i]`` is the (stratum, bin, label) cell of task ``t`` of the ``i``-th row in
    slot order (``ptr`` the CSR row ranges of the slots, empty for one row per slot), of
    ``n_cells`` cells per task. ``runs`` is ``(bounds, run_stratum, rel_codes)`` of
    :func:`ecgaudit.metrics._binsweep.stratum_runs` (one row per slot) or three empty arrays:
    with runs, the draws and sweeps go stratum by stratum (:func:`~._binsweep.draw_sweep`).
    ``kinds, srcs, dsts`` is the plan of
    :func:`ecgaudit.metrics._binkernels.marginal_plan`; ``reps[t]`` the bins' scores;
    ``coarse_of[t]`` the coarse bin of each bin and ``x_cal[t]`` the coarse bins' covariate;
    ``a0, b0`` (T, S) start the fits. Outputs ``ist_out``
    (T, R, 9, S) and ``fst_out`` (T, R, 8, S), zeroed by the caller.
    """
    n_r = keys.size
    n_t = codes.shape[0]
    n_units = slot_size.size
    n_s = ist_out.shape[3]
    bounds, run_stratum, rel = runs
    fused = bounds.size > 0
    for ch in prange(n_chunks):
        cnt = np.empty(n_units, dtype=np.uint8)
        ovf = np.empty(n_units, dtype=np.int64)
        acc = np.empty(n_cells, dtype=np.int32)
        all_acc = np.zeros(n_t * n_cells if fused else 0, dtype=np.int32)
        cells = np.empty((n_s + 1) * width, dtype=np.int32)
        coarse = np.empty(n_s * n_coarse * 2, dtype=np.int32)
        for r in range(ch * n_r // n_chunks, (ch + 1) * n_r // n_chunks):
            key = keys[r]
            if fused:
                draw_sweep(key, cap, bounds, run_stratum, rel, width, n_cells, cnt, ovf, all_acc)
                for t in range(n_t):
                    finish_task(all_acc[t * n_cells:(t + 1) * n_cells], t, r, kinds, srcs,
                                 dsts, width, reps, thr, ece_bins, refslot, allslot, coarse_of,
                                 n_coarse, x_cal, a0, b0, calibration, ist_out, fst_out, cells,
                                 coarse)
                continue
            cnt[:] = 0
            n_ovf = 0
            for j in range(n_units):
                # Unsigned indices: numba then skips the negative-index check (~15% faster).
                u = np.uint64(slot_start[j] + pick(key, j, slot_size[j]))
                c = cnt[u]
                if c == cap:
                    ovf[n_ovf] = u
                    n_ovf += 1
                else:
                    cnt[u] = c + 1
            for t in range(n_t):
                ct = codes[t]
                acc[:] = 0
                if ptr.size == 0:  # one row per slot
                    for s in range(n_units):
                        acc[np.uint64(ct[s])] += cnt[s]
                    for e in range(n_ovf):
                        acc[np.uint64(ct[ovf[e]])] += 1
                else:
                    for s in range(n_units):
                        c = cnt[s]
                        if c:
                            for i in range(ptr[s], ptr[s + 1]):
                                acc[np.uint64(ct[i])] += c
                    for e in range(n_ovf):
                        for i in range(ptr[ovf[e]], ptr[ovf[e] + 1]):
                            acc[np.uint64(ct[i])] += 1
                finish_task(acc, t, r, kinds, srcs, dsts, width, reps, thr, ece_bins, refslot,
                             allslot, coarse_of, n_coarse, x_cal, a0, b0, calibration, ist_out,
                             fst_out, cells, coarse)


@_jit
def finish_task(acc, t, r, kinds, srcs, dsts, width, reps, thr, ece_bins, refslot, allslot,
                 coarse_of, n_coarse, x_cal, a0, b0, calibration, ist_out, fst_out, cells,
                 coarse):
    """Task ``t`` of replicate ``r`` from its stratum cells ``acc``: group cells, scan, fit.

    The per-replicate tail shared by the row draws here and the cell draws of
    :mod:`ecgaudit.metrics._cellboot`; ``cells`` and ``coarse`` are the thread's buffers.
    """
    marginalize_one(acc, kinds, srcs, dsts, width, cells)
    ist = ist_out[t, r]
    fst = fst_out[t, r]
    if not calibration:
        scan_one(cells, reps[t], thr[t], ece_bins, refslot, allslot, ist, fst)
        fst[4, :] = np.nan
        fst[5, :] = np.nan
        return
    scan_coarsen_one(cells, reps[t], thr[t], ece_bins, refslot, allslot, ist, fst,
                     coarse_of[t], n_coarse, coarse)
    fit_cells(coarse, n_coarse, x_cal[t], a0[t], b0[t], fst[4], fst[5])


@_jit
def fit_cells(cells, n_coarse, x_cal, a0, b0, out_a, out_b):
    """Recalibration fit of every group from its coarse cells ``(group, bin, label)``.

    :func:`fit_vectorised` (the rules and start values of
    :func:`ecgaudit.metrics._newton.fit_weighted`) of each group over its non-empty bins.
    """
    x = np.empty(n_coarse)
    w0 = np.empty(n_coarse, dtype=np.int64)
    w1 = np.empty(n_coarse, dtype=np.int64)
    e = np.empty(n_coarse)
    bits = np.empty(n_coarse, dtype=np.int64)
    for g in range(a0.size):
        cg = cells[g * n_coarse * 2:(g + 1) * n_coarse * 2]
        m = 0
        n0 = 0
        n1 = 0
        lo1 = np.inf
        hi1 = -np.inf
        lo0 = np.inf
        hi0 = -np.inf
        for k in range(n_coarse):
            c0 = np.int64(cg[2 * k])
            c1 = np.int64(cg[2 * k + 1])
            if c0 + c1 == 0:
                continue
            xk = x_cal[k]
            if c0:
                lo0 = min(lo0, xk)
                hi0 = max(hi0, xk)
            if c1:
                lo1 = min(lo1, xk)
                hi1 = max(hi1, xk)
            x[m] = xk
            w0[m] = c0
            w1[m] = c1
            n0 += c0
            n1 += c1
            m += 1
        if n1 == 0 or n0 == 0 or not (hi0 > lo1 and hi1 > lo0):  # undefined or separated
            out_a[g] = np.nan
            out_b[g] = np.nan
            continue
        a, b = 0.0, 1.0  # without a start: the identity recalibration
        if np.isfinite(a0[g]) and np.isfinite(b0[g]):
            a, b = a0[g], b0[g]
        out_a[g], out_b[g] = fit_vectorised(x[:m], w0[:m], w1[:m], a, b, e, bits)


@_pjit
def fit_coarse(cells, n_coarse, x_cal, a0, b0, out):
    """:func:`fit_cells` of every task and replicate, in parallel.

    ``cells`` (R, T * S * n_coarse * 2), ``x_cal`` (T, n_coarse), ``a0, b0`` (T, S),
    ``out`` (T, R, 2, S).
    """
    n_t, n_r = out.shape[0], out.shape[1]
    span = cells.shape[1] // n_t
    for job in prange(n_t * n_r):
        t = job // n_r
        r = job - t * n_r
        fit_cells(cells[r, t * span:(t + 1) * span], n_coarse, x_cal[t], a0[t], b0[t],
                  out[t, r, 0], out[t, r, 1])


#: ``exp(r)`` on ``|r| <= ln(2) / 2``: Taylor terms up to ``r**13 / 13!`` (error < 1e-17).
_EXP_TERMS = tuple(1.0 / np.prod(np.arange(1.0, k + 1.0)) for k in range(14))
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # ln 2 split in two (Cody-Waite): kf * _LN2_HI is exact
_LN2_LO = 1.9082149292705877e-10


@_rjit
def exp_neg(x, a, b, e, bits):
    """Write ``exp(-(a + b x))`` as ``e * 2**k`` (``bits``: ``2**k`` as float64 bits).

    The argument is clamped to ``[-700, 700]`` (beyond it the sigmoid is 0 or 1 to double
    precision either way) and reduced to ``r`` in ``[-ln2/2, ln2/2]``; ``exp(r)`` is a
    Horner polynomial (within ~2 ulp of ``math.exp``, tested) and ``2**k`` is built from
    its exponent bits.
    """
    c = _EXP_TERMS
    for k in range(x.size):
        t = min(max(-(a + b * x[k]), -700.0), 700.0)
        kf = np.floor(t * _LOG2E + 0.5)
        r = (t - kf * _LN2_HI) - kf * _LN2_LO
        p = c[13]
        p = p * r + c[12]
        p = p * r + c[11]
        p = p * r + c[10]
        p = p * r + c[9]
        p = p * r + c[8]
        p = p * r + c[7]
        p = p * r + c[6]
        p = p * r + c[5]
        p = p * r + c[4]
        p = p * r + c[3]
        p = p * r + c[2]
        p = p * r + c[1]
        e[k] = p * r + c[0]
        bits[k] = (np.int64(kf) + 1023) << 52


@_rjit
def _gradient(x, w0, w1, e, scale):
    """Gradient and Hessian sums of the weighted log-likelihood, in any order."""
    ga = gx = haa = hab = hbb = 0.0
    for k in range(x.size):
        mu = 1.0 / (1.0 + e[k] * scale[k])
        xk = x[k]
        n0 = w0[k]
        n1 = w1[k]
        r = n1 * (1.0 - mu) - n0 * mu
        v = (n0 + n1) * (mu * (1.0 - mu))
        ga += r
        gx += r * xk
        haa += v
        hab += v * xk
        hbb += v * xk * xk
    return ga, gx, haa, hab, hbb


@_jit
def fit_vectorised(x, w0, w1, a, b, e, bits):
    """:func:`ecgaudit.metrics._newton.fit_weighted` with vectorised sums.

    The same start, steps, halvings and stopping rules; the sigmoid's exponential comes
    from :func:`exp_neg` and the gradient sums are added in any order, so the fit agrees
    with ``fit_weighted`` to rounding (~1e-15, tested). ``e`` and ``bits`` are scratch of
    at least ``x.size``.
    """
    m = x.size
    ev = e[:m]
    bv = bits[:m]
    scale = bv.view(np.float64)
    for _ in range(nt.MAX_ITER):
        exp_neg(x, a, b, ev, bv)
        ga, gx, haa, hab, hbb = _gradient(x, w0, w1, ev, scale)
        det = nt.determinant(haa, hab, hbb)
        if not det > 0:
            return np.nan, np.nan
        da, db = nt.direction(ga, gx, haa, hab, hbb, det)
        if nt.is_final(da, db, a, b):
            return a + da, b + db
        tt = 1.0
        if nt.step_size(da, db) > nt.GUARD:
            ll = nt.loglik(x, w0, w1, a, b)
            for _h in range(nt.HALVINGS):
                if nt.accepts(nt.loglik(x, w0, w1, a + tt * da, b + tt * db), ll):
                    break
                tt /= 2.0
        a += tt * da
        b += tt * db
        if nt.diverged(a, b):
            return np.nan, np.nan
        if nt.converged(tt * nt.step_size(da, db), a, b):
            return a, b
    return np.nan, np.nan
