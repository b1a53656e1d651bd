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
from ecgaudit.metrics._compile import HAVE_NUMBA
from ecgaudit.metrics._kernels import _jit, _pjit, prange

if HAVE_NUMBA:  # pragma: no branch - sums whose order may change (see scan_one)
    import numba

    from ecgaudit.metrics._compile import _CACHE

    # Not inlined: numba would compile an inlined body with its caller's (strict) flags.
    _rjit = numba.njit(cache=_CACHE, nogil=True, error_model="numpy",
                       fastmath={"reassoc", "contract"})
else:  # pragma: no cover
    _rjit = _jit


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


@_rjit
def _dot_ece(cg, negp, dpos, lo, hi):
    """Residual sum ``sum (0 - p) n0 + (1 - p) n1`` of bins ``lo..hi-1`` (any order)."""
    c, a, d = cg[2 * lo:2 * hi], negp[lo:hi], dpos[lo:hi]  # views: no wraparound checks
    out = 0.0
    for b in range(hi - lo):
        out += c[2 * b] * a[b] + c[2 * b + 1] * d[b]
    return out


@_rjit
def _bin_sums(cg, rep, p2, d2, flag, cx, px, n_tot, p_tot, nb):
    """Sum the scan's statistics over the bins of one group, in any order (vectorised).

    Returns ``tp, flagged, u2`` (integers) and ``sum_p, sq, ap``; ``cx[b]`` / ``px[b]`` are
    the rows / positives below bin ``b`` (:func:`_prefix`).
    """
    tp = 0
    flagged = 0
    u2 = 0
    sum_p = 0.0
    sq = 0.0
    ap = 0.0
    for b in range(nb):
        n0 = cg[2 * b]
        n1 = cg[2 * b + 1]
        f = flag[b]
        below = cx[b]
        pos_below = px[b]
        tp += f * n1
        flagged += f * (n0 + n1)
        u2 += np.int64(n1) * (2 * (below - pos_below) + n0)
        sum_p += (n0 + n1) * rep[b]
        sq += n0 * p2[b] + n1 * d2[b]
        ap += n1 * ((p_tot - pos_below) / max(n_tot - below, 1))
    return tp, flagged, u2, sum_p, sq, ap


@_jit
def _prefix(cg, nb, cx, px):
    """Rows and positives below every bin (``cx``, ``px``, ``nb + 1`` entries): the totals."""
    cb = 0
    pb = 0
    for b in range(nb):
        cx[b] = cb
        px[b] = pb
        cb += cg[2 * b] + cg[2 * b + 1]
        pb += cg[2 * b + 1]
    cx[nb] = cb
    px[nb] = pb
    return cb, pb


@_jit
def _ece_sum(cg, cx, nb, n_tot, bins, negp, dpos):
    """ECE numerator of one group: ``sum_k |sum of (y - p) over ECE bin k|``.

    ECE bin ``k`` holds rows ``edge(k) .. edge(k + 1) - 1`` (rows in bin order, inside a bin
    negatives first): the bins it covers whole add by :func:`_dot_ece`, the (at most two)
    bins it shares with its neighbours add their rows inside it.
    """
    q = n_tot // bins
    rem = n_tot - q * bins
    ece = 0.0
    start = 0
    b1 = 0
    for k in range(bins):
        end = _ecebins.edge(k + 1, q, rem)
        if end > start:
            b0 = _bin_of(cx, b1, nb, start)
            b1 = _bin_of(cx, b0, nb, end - 1)
            acc = _shared(cg, cx, b0, start, end, negp, dpos)
            if b1 > b0:
                acc += _dot_ece(cg, negp, dpos, b0 + 1, b1)
                acc += _shared(cg, cx, b1, start, end, negp, dpos)
            ece += abs(acc)
        start = end
    return ece


@_jit
def _bin_of(cx, lo, hi, row):
    """Return the bin holding ``row``: the last ``b`` in ``lo .. hi - 1`` with ``cx[b] <= row``."""
    while hi - lo > 1:  # cx[lo] <= row < cx[hi] (cx[nb] is the total)
        mid = (lo + hi) >> 1
        if cx[mid] <= row:
            lo = mid
        else:
            hi = mid
    return lo


@_jit
def _shared(cg, cx, b, start, end, negp, dpos):
    """Residuals of bin ``b``'s rows inside rows ``start .. end - 1``."""
    lo, hi = cx[b], cx[b + 1]
    mid = lo + cg[2 * b]
    w0 = max(0, min(mid, end) - max(lo, start))
    w1 = max(0, min(hi, end) - max(mid, start))
    return w0 * negp[b] + w1 * dpos[b]


@_jit
def scan_one(c, rep, thr, bins, refslot, allslot, ist_out, fst_out):
    """:func:`binned_scan` of one replicate: ``ist_out`` (9, S), ``fst_out`` (8, S)."""
    scan_coarsen_one(c, rep, thr, bins, refslot, allslot, ist_out, fst_out,
                     np.zeros(0, dtype=np.int64), 0, np.zeros(0, dtype=np.int32))


@_jit
def scan_coarsen_one(c, rep, thr, bins, refslot, allslot, ist_out, fst_out, coarse_of,
                     n_coarse, dst):
    """:func:`scan_one`, and with ``dst`` not empty also :func:`coarsen_one` into ``dst``.

    One sequential pass per group takes the counts below every bin (:func:`_prefix`);
    every statistic is then a sum over the bins (:func:`_bin_sums`, the ECE bins'
    residuals by :func:`_ece_sum`, the ranking counts by :func:`_rank_dots`). The integer
    statistics are exact; the floating sums are vectorised, so their order differs from
    row-by-row accumulation (within ~1e-14 relative, tested against the sequential scan).
    The coarse cells of a group are differences of the counts below the coarse bins' ends
    (the same integers as :func:`coarsen_one`'s sums, tested).
    """
    nb = rep.size
    nb_real = nb  # bins past the task's own are padding (score inf, never drawn)
    while nb_real > 0 and not np.isfinite(rep[nb_real - 1]):
        nb_real -= 1
    n_s = ist_out.shape[1]
    negp = np.empty(nb_real)
    dpos = np.empty(nb_real)
    p2 = np.empty(nb_real)
    d2 = np.empty(nb_real)
    flag = np.empty(nb_real, dtype=np.int64)
    for b in range(nb_real):
        p = rep[b]
        d = 1 - p
        negp[b] = 0 - p
        dpos[b] = d
        p2[b] = p * p
        d2[b] = d * d
        flag[b] = 1 if p >= thr else 0
    cx = np.empty(nb_real + 1, dtype=np.int64)  # rows and positives below every bin
    px = np.empty(nb_real + 1, dtype=np.int64)
    mult, row_of = _multipliers(c, nb, nb_real, refslot, allslot)
    ends = _coarse_ends(coarse_of, n_coarse, nb_real)
    for g in range(n_s):
        cg = c[g * 2 * nb:(g + 1) * 2 * nb]  # a view: indices from range() vectorise
        n_tot, p_tot = _prefix(cg, nb_real, cx, px)
        if dst.size:
            _coarse_from_prefix(cx, px, ends, dst[g * n_coarse * 2:(g + 1) * n_coarse * 2])
        ist_out[0, g] = n_tot
        ist_out[1, g] = p_tot
        if n_tot == 0:
            continue
        tp, flagged, u2, sum_p, sq, ap = _bin_sums(cg, rep, p2, d2, flag, cx, px, n_tot,
                                                   p_tot, nb_real)
        ece = _ece_sum(cg, cx, nb_real, n_tot, bins, negp, dpos)
        bg_c, bg_e = _rank_dots(cg, mult[row_of[allslot]], nb_real)
        ref_x = ref_y = 0
        if refslot[g] >= 0:
            ref_y, ref_x = _rank_dots(cg, mult[row_of[refslot[g]]], nb_real)
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


@_jit
def _coarse_ends(coarse_of, n_coarse, nb_real):
    """Return the end (exclusive, at most ``nb_real``) of every coarse bin's run of bins."""
    ends = np.zeros(n_coarse + 1, dtype=np.int64)  # ends[k + 1]: end of coarse bin k
    for b in range(min(coarse_of.size, nb_real)):
        ends[coarse_of[b] + 1] = b + 1
    for k in range(1, n_coarse + 1):  # coarse bins without bins end where the last did
        ends[k] = max(ends[k], ends[k - 1])
    return ends


@_jit
def _coarse_from_prefix(cx, px, ends, dg):
    """Negatives and positives of every coarse bin from the counts below the bins."""
    for k in range(ends.size - 1):
        lo, hi = ends[k], ends[k + 1]
        pos = px[hi] - px[lo]
        dg[2 * k] = (cx[hi] - cx[lo]) - pos
        dg[2 * k + 1] = pos


@_jit
def _multipliers(c, nb, nb_real, refslot, allslot):
    """Ranking multipliers per bin of the cohort (slot ``allslot``) and every reference.

    ``2 x (negatives below the bin) + negatives in it``, and the same for positives; a
    group's BPSN/BNSP/xAUC counts are then dot products with its own cells (vectorised).
    Returns the ``(rows, 2, nb_real)`` multipliers and the row of every slot (or -1).
    """
    n_s = refslot.size
    row_of = np.full(n_s + 1, -1, dtype=np.int64)
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
    return mult, row_of


@_jit
def _rank_dots(cg, m, nb_real):
    """``(sum n0 x m[1], sum n1 x m[0])``: a group's cells against one multiplier row."""
    m0 = m[0]
    m1 = m[1]
    neg = 0
    pos = 0
    for b in range(nb_real):
        neg += np.int64(cg[2 * b]) * m1[b]
        pos += np.int64(cg[2 * b + 1]) * m0[b]
    return neg, pos
