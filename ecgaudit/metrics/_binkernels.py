"""Compiled kernels of the binned bootstrap mode: group cells and their scans.

A *cell* of a task is (finest stratum, score bin, label); the draws fill the cell counts
(:func:`ecgaudit.metrics._drawkernels.draw_cells`). Marginal groups are then sums of stratum
cells (:func:`marginalize`), and one scan per group and bin gives every statistic.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._kernels import _pjit, prange

__all__ = [
    "aggregate_cells", "binned_scan", "coarsen", "marginal_plan", "marginalize",
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


@_pjit
def marginalize(counts, kinds, srcs, dsts, width, out):
    """Group cells from stratum cells by the plan of :func:`marginal_plan` (R in parallel)."""
    for r in prange(counts.shape[0]):
        src0 = counts[r]
        dst = out[r]
        dst[:] = 0
        for step in range(kinds.size):
            d0 = dsts[step] * width
            s0 = srcs[step] * width
            if kinds[step] == 0:
                for c in range(width):
                    dst[d0 + c] += src0[s0 + c]
            else:
                for c in range(width):
                    dst[d0 + c] += dst[s0 + c]


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


@_pjit
def coarsen(cells, n_groups, coarse_of, n_coarse, out):
    """Sum score bins into recalibration bins: ``coarse_of[b]`` is bin ``b``'s coarse bin.

    ``cells`` (R, (S [+ 1]) * nb * 2) -> ``out`` (R, S * n_coarse * 2), labels kept apart.
    """
    nb = coarse_of.size
    for r in prange(cells.shape[0]):
        src = cells[r]
        dst = out[r]
        dst[:] = 0
        for g in range(n_groups):
            for b in range(nb):
                o = (g * n_coarse + coarse_of[b]) * 2
                i = (g * nb + b) * 2
                dst[o] += src[i]
                dst[o + 1] += src[i + 1]


@_pjit
def binned_scan(cells, rep, thr, bins, refslot, allslot, ist_out, fst_out):
    """Statistics of every group from its score-bin cells (replicates in parallel).

    ``cells`` (R, (S + 1) * 2 * nb) holds per group slot and score bin the negative and
    positive counts; slot ``allslot`` is the whole cohort. The statistics equal those of
    :func:`ecgaudit.metrics._kernels.task_stats` on these cells (bins are tie blocks;
    inside a bin negatives come first), without the recalibration fit.
    """
    nb = rep.size
    n_s = ist_out.shape[2]
    a_base = allslot * 2 * nb
    for r in prange(cells.shape[0]):
        c = cells[r]
        for g in range(n_s):
            base = g * 2 * nb
            ref = refslot[g]
            r_base = ref * 2 * nb
            n_tot = 0
            p_tot = 0
            for b in range(nb):
                n_tot += c[base + 2 * b] + c[base + 2 * b + 1]
                p_tot += c[base + 2 * b + 1]
            ist_out[r, 0, g] = n_tot
            ist_out[r, 1, g] = p_tot
            if n_tot == 0:
                continue
            q = n_tot // bins
            rem = n_tot - q * bins
            nxt = q + (1 if rem > 0 else 0)
            cur = 0
            acc = 0.0
            ece = 0.0
            cb = 0
            pb = 0
            cb_all = 0
            pb_all = 0
            cb_r = 0
            pb_r = 0
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
            dl10 = 0.0
            dl01 = 0.0
            for b in range(nb):
                n0 = np.int64(c[base + 2 * b])
                n1 = np.int64(c[base + 2 * b + 1])
                a0 = np.int64(c[a_base + 2 * b])
                a1 = np.int64(c[a_base + 2 * b + 1])
                r0 = np.int64(0)
                r1 = np.int64(0)
                if ref >= 0:
                    r0 = np.int64(c[r_base + 2 * b])
                    r1 = np.int64(c[r_base + 2 * b + 1])
                if n0 + n1 > 0:
                    p = rep[b]
                    if n1:
                        v = 2 * (cb - pb) + n0
                        u2 += n1 * v
                        dl10 += n1 * (np.float64(v) * v)
                        ap += n1 * ((p_tot - pb) / (n_tot - cb))
                        bg_e += n1 * (2 * (cb_all - pb_all) + a0)
                        ref_x += n1 * (2 * (cb_r - pb_r) + r0)
                    if n0:
                        v = 2 * p_tot - 2 * pb - n1
                        dl01 += n0 * (np.float64(v) * v)
                        bg_c += n0 * (2 * pb_all + a1)
                        ref_y += n0 * (2 * pb_r + r1)
                    if p >= thr:
                        flagged += n0 + n1
                        tp += n1
                    for y in range(2):
                        w = n0 if y == 0 else n1
                        if w == 0:
                            continue
                        d = y - p
                        sum_p += w * p
                        sq += w * (d * d)
                        left = w
                        pos = cb
                        while left > 0:
                            m = min(left, nxt - pos)
                            if m > 0:
                                acc += m * d
                                pos += m
                                left -= m
                            if pos == nxt:
                                ece += abs(acc)
                                acc = 0.0
                                cur += 1
                                k1 = cur + 1
                                nxt = k1 * q + min(k1, rem)
                        cb += w
                        pb += w * y
                cb_all += a0 + a1
                pb_all += a1
                cb_r += r0 + r1
                pb_r += r1
            ist_out[r, 2, g] = tp
            ist_out[r, 3, g] = flagged
            ist_out[r, 4, g] = u2
            ist_out[r, 5, g] = bg_c
            ist_out[r, 6, g] = bg_e
            ist_out[r, 7, g] = ref_x
            ist_out[r, 8, g] = ref_y
            fst_out[r, 0, g] = sum_p
            fst_out[r, 1, g] = sq
            fst_out[r, 2, g] = ap
            fst_out[r, 3, g] = ece
            fst_out[r, 6, g] = dl10
            fst_out[r, 7, g] = dl01
