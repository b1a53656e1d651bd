"""Compiled kernels of the binned bootstrap mode: group cells and their scans.

A *cell* of a task is (finest stratum, score bin, label). Marginal groups are sums of stratum
cells (:func:`marginalize`), and one scan per group and bin gives every statistic
(:func:`binned_scan`). The ``*_one`` functions do one replicate; the fused kernel of
:mod:`ecgaudit.metrics._binfused` calls them, and the batched versions here serve explicit
row weights (the jackknife).
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics import _ecebins
from ecgaudit.metrics._kernels import _jit, _pjit, prange

__all__ = [
    "aggregate_cells", "binned_scan", "coarsen", "coarsen_one", "marginal_plan", "marginalize",
    "marginalize_one", "scan_one",
]


@_pjit
def aggregate_cells(W, cells, out):
    # out[r, t, c] = sum of W[r, i] over rows i with cells[t, i] == c (row order).
    n_t = cells.shape[0]
    for r in prange(W.shape[0]):
        acc = out[r]
        for i in range(W.shape[1]):
            w = W[r, i]
            if w:
                for t in range(n_t):
                    acc[t, cells[t, i]] += w


@_jit
def marginalize_one(src0, kinds, srcs, dsts, width, dst):
    """Group cells of one replicate from its stratum cells (see :func:`marginalize`)."""
    n_dst = dst.size // width
    seen = np.zeros(n_dst, dtype=np.bool_)  # a slot's first step copies (no zeroing pass)
    for step in range(kinds.size):
        d0 = dsts[step] * width
        s0 = srcs[step] * width
        out = dst[d0:d0 + width]  # views: indices from range() vectorise (no wraparound)
        src = src0[s0:s0 + width] if kinds[step] == 0 else dst[s0:s0 + width]
        if seen[dsts[step]]:
            for c in range(width):
                out[c] += src[c]
        else:
            seen[dsts[step]] = True
            for c in range(width):
                out[c] = src[c]
    for k in range(n_dst):
        if not seen[k]:
            dst[k * width:(k + 1) * width] = 0


@_pjit
def marginalize(counts, kinds, srcs, dsts, width, out):
    """Group cells from stratum cells by the plan of :func:`marginal_plan` (R in parallel)."""
    for r in prange(counts.shape[0]):
        marginalize_one(counts[r], kinds, srcs, dsts, width, out[r])


def marginal_plan(gmap: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, ...]:
    """Plan the sums that build every group's cells, reusing finer groupings.

    Groupings are built from the most to the fewest groups; each is summed from the
    already built grouping with the fewest groups that refines it (e.g. ``race`` from
    ``race & sex``), or from the strata. Returns ``(kinds, srcs, dsts)``: step ``i`` adds
    source ``srcs[i]`` (a stratum if ``kinds[i] == 0``, else a group slot) to slot
    ``dsts[i]``.
    """
    n_k, n_f = gmap.shape
    sizes = np.diff(offsets)
    kinds: list[int] = []
    srcs: list[int] = []
    dsts: list[int] = []
    built: list[int] = []
    for k in sorted(range(n_k), key=lambda i: (-int(sizes[i]), i)):
        best = None
        for k2 in built:
            pairs = {(int(a), int(b)) for a, b in zip(gmap[k2], gmap[k])}
            refines = len({a for a, _ in pairs}) == len(pairs)
            if refines and (best is None or sizes[k2] < sizes[best]):
                best = k2
        if best is None or sizes[best] >= n_f:
            for f in range(n_f):
                kinds.append(0)
                srcs.append(f)
                dsts.append(int(gmap[k, f]))
        else:
            for a, b in sorted({(int(a), int(b)) for a, b in zip(gmap[best], gmap[k])}):
                kinds.append(1)
                srcs.append(a)
                dsts.append(b)
        built.append(k)
    return (np.asarray(kinds, dtype=np.int64), np.asarray(srcs, dtype=np.int64),
            np.asarray(dsts, dtype=np.int64))


@_jit
def coarsen_one(src, n_groups, coarse_of, n_coarse, dst):
    """Coarse cells of one replicate (see :func:`coarsen`)."""
    nb = coarse_of.size
    for g in range(n_groups):
        sg = src[g * nb * 2:(g + 1) * nb * 2]
        dg = dst[g * n_coarse * 2:(g + 1) * n_coarse * 2]
        dg[:] = 0
        k = 0  # coarse_of is non-decreasing: runs of bins
        s0 = 0
        s1 = 0
        for b in range(nb):
            if coarse_of[b] != k:
                dg[2 * k] = s0
                dg[2 * k + 1] = s1
                k = coarse_of[b]
                s0 = 0
                s1 = 0
            s0 += sg[2 * b]
            s1 += sg[2 * b + 1]
        dg[2 * k] = s0
        dg[2 * k + 1] = s1


@_pjit
def coarsen(cells, n_groups, coarse_of, n_coarse, out):
    """Sum score bins into recalibration bins: ``coarse_of[b]`` is bin ``b``'s coarse bin.

    ``cells`` (R, (S [+ 1]) * nb * 2) -> ``out`` (R, S * n_coarse * 2), labels kept apart.
    """
    for r in prange(cells.shape[0]):
        coarsen_one(cells[r], n_groups, coarse_of, n_coarse, out[r])


@_pjit
def binned_scan(cells, rep, thr, bins, refslot, allslot, ist_out, fst_out):
    """Statistics of every group from its score-bin cells (replicates in parallel).

    ``cells`` (R, (S + 1) * 2 * nb) holds per group slot and score bin the negative and
    positive counts; slot ``allslot`` is the whole cohort. The statistics equal those of
    :func:`ecgaudit.metrics._kernels.task_stats` on these cells (bins are tie blocks;
    inside a bin negatives come first), without the recalibration fit and the DeLong sums
    (``nan``: DeLong variances are point estimates, from the exact cells).
    """
    for r in prange(cells.shape[0]):
        scan_one(cells[r], rep, thr, bins, refslot, allslot, ist_out[r], fst_out[r])


@_jit
def scan_one(c, rep, thr, bins, refslot, allslot, ist_out, fst_out):
    """:func:`binned_scan` of one replicate: ``ist_out`` (9, S), ``fst_out`` (8, S)."""
    nb = rep.size
    nb_real = nb  # bins past the task's own are padding (score inf, never drawn)
    while nb_real > 0 and not np.isfinite(rep[nb_real - 1]):
        nb_real -= 1
    n_s = ist_out.shape[1]
    # Ranking multipliers per bin of the cohort (slot allslot) and of every reference slot:
    # 2 x (negatives below the bin) + negatives in it, and the same for positives. A
    # group's BPSN/BNSP/xAUC counts are then dot products with its own cells (vectorised).
    row_of = np.full(n_s + 1, -1, dtype=np.int64)  # the slot's row of `mult`
    n_m = 0
    for k in range(n_s + 1):
        src = allslot if k == n_s else refslot[k]
        if src >= 0 and row_of[src] < 0:
            row_of[src] = n_m
            n_m += 1
    mult = np.empty((n_m, 2, nb_real), dtype=np.int64)
    for src in range(n_s + 1):
        if row_of[src] < 0:
            continue
        cs = c[src * 2 * nb:(src + 1) * 2 * nb]
        m0 = mult[row_of[src], 0]
        m1 = mult[row_of[src], 1]
        nbw = 0
        pbw = 0
        for b in range(nb_real):
            x0 = np.int64(cs[2 * b])
            x1 = np.int64(cs[2 * b + 1])
            m0[b] = 2 * nbw + x0
            m1[b] = 2 * pbw + x1
            nbw += x0
            pbw += x1
    for g in range(n_s):
        cg = c[g * 2 * nb:(g + 1) * 2 * nb]  # a view: indices from range() vectorise
        ref = refslot[g]
        n_tot = 0
        p_tot = 0
        for b in range(nb_real):
            n_tot += cg[2 * b] + cg[2 * b + 1]
            p_tot += cg[2 * b + 1]
        ist_out[0, g] = n_tot
        ist_out[1, g] = p_tot
        if n_tot == 0:
            continue
        q = n_tot // bins
        rem = n_tot - q * bins
        nxt = _ecebins.edge(1, q, rem)
        cur = 0
        acc = 0.0
        ece = 0.0
        cb = 0
        pb = 0
        u2 = 0
        tp = 0
        flagged = 0
        bg_c = 0
        bg_e = 0
        ref_x = 0
        ref_y = 0
        sum_p = 0.0
        sq = 0.0
        ap = 0.0
        # Branch-free over the bins (an empty bin adds zeros); only the end of an ECE bin
        # takes the slow path. The sums are in the same order as row-by-row accumulation.
        for b in range(nb_real):
            n0 = np.int64(cg[2 * b])
            n1 = np.int64(cg[2 * b + 1])
            p = rep[b]
            v = 2 * (cb - pb) + n0
            u2 += n1 * v
            ap += n1 * ((p_tot - pb) / max(n_tot - cb, 1))
            if p >= thr:
                flagged += n0 + n1
                tp += n1
            if cb + n0 + n1 < nxt:
                d = 1 - p
                sum_p += n0 * p
                sq += n0 * (p * p)
                acc += n0 * (0 - p)
                sum_p += n1 * p
                sq += n1 * (d * d)
                acc += n1 * d
                cb += n0 + n1
                pb += n1
            else:  # an ECE bin ends inside this bin
                for y in range(2):
                    w = n0 if y == 0 else n1
                    if w == 0:
                        continue
                    d = y - p
                    sum_p += w * p
                    sq += w * (d * d)
                    acc, ece, cur, nxt = _ecebins.feed(cb, w, d, acc, ece, cur, nxt, q, rem)
                    cb += w
                    pb += w * y
        ma0 = mult[row_of[allslot], 0]
        ma1 = mult[row_of[allslot], 1]
        for b in range(nb_real):
            bg_e += np.int64(cg[2 * b + 1]) * ma0[b]
            bg_c += np.int64(cg[2 * b]) * ma1[b]
        if ref >= 0:
            mr0 = mult[row_of[ref], 0]
            mr1 = mult[row_of[ref], 1]
            for b in range(nb_real):
                ref_x += np.int64(cg[2 * b + 1]) * mr0[b]
                ref_y += np.int64(cg[2 * b]) * mr1[b]
        ist_out[2, g] = tp
        ist_out[3, g] = flagged
        ist_out[4, g] = u2
        ist_out[5, g] = bg_c
        ist_out[6, g] = bg_e
        ist_out[7, g] = ref_x
        ist_out[8, g] = ref_y
        fst_out[0, g] = sum_p
        fst_out[1, g] = sq
        fst_out[2, g] = ap
        fst_out[3, g] = ece
        fst_out[6, g] = np.nan  # DeLong sums: point estimates only (exact engine)
        fst_out[7, g] = np.nan
