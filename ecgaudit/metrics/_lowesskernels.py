"""Compiled lowess kernels of the calibration suite (exact windows and binned grid fit).

The same arithmetic as the numpy reference in :mod:`ecgaudit.metrics._calsuite`
(``lowess_fit`` and ``binned_lowess_fit`` with ``compiled=False``), one evaluation point at a
time, so nothing of size (points x window) or (points x bins) is ever held in memory:

* :func:`exact_lowess` - every point's ``k`` nearest rows, tricube weights normalised to sum
  1, the weighted mean, the weighted variance (floored at 1e-12) and the local line (opt-in:
  ``lowess_fit(..., compiled=True)``; numpy's vectorised ``pow`` makes numpy faster there);
* :func:`binned_lowess` - the binned grid fit (the default for large groups): bin counts,
  mean scores and label sums (as ``np.add.reduceat``), the edge pieces' prefix sums read in
  one pass at the rows needed, then per grid point only the bins inside its window (the
  numpy path computes every bin and masks those outside) and the two bins cut by its ends.

Sums are numpy's pairwise sums (:func:`_pairwise`, bit for bit ``np.add.reduce``); where
numpy uses BLAS dot products, or SIMD ``pow``, the last bits differ:
``tests/test_lowesskernels.py`` asserts agreement with the numpy path to 1e-12 (absolute,
or relative for values above 1) on random, tied, separated, tiny and large inputs. Windows
of radius 0 (at least ``k`` tied scores) are left ``nan`` here and replaced by the caller's
tie rule, as in the numpy path. Each ``split_by_group`` is a counting sort (identical to a
stable argsort and gather).
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._compile import _CACHE, HAVE_NUMBA, _ijit, _jit

if HAVE_NUMBA:  # float division by 0 gives inf/nan as in numpy (no Python check per op)
    import numba

    _vjit = numba.njit(cache=_CACHE, nogil=True, error_model="numpy")
    _vijit = numba.njit(cache=_CACHE, nogil=True, error_model="numpy", inline="always")
else:  # pragma: no cover
    _vjit = _vijit = _jit

__all__ = ["bin_sums", "binned_lowess", "exact_lowess", "fit_from_bins", "merge_unique",
           "split_by_group"]


@_ijit
def _window_start(x: np.ndarray, k: int, val: float) -> int:
    """First ``i`` with ``(x[i] + x[i + k]) / 2 >= val`` (``searchsorted`` of the midpoints)."""
    lo, hi = 0, x.size - k
    while lo < hi:
        mid = (lo + hi) // 2
        if (x[mid] + x[mid + k]) / 2.0 < val:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_vijit
def _tricube(dist: float, radius: float) -> float:
    """``(1 - d**3)**3`` of ``d = min(dist / radius, 1)``."""
    d = min(dist / radius, 1.0)
    d = d * d * d
    d = 1.0 - d
    return d * d * d


@_ijit
def _pairwise_leaf(a: np.ndarray, lo: int, n: int) -> float:
    """Sum ``a[lo:lo + n]`` for ``n <= 128`` as numpy does (8 running sums)."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        b = lo + i
        r0 += a[b]
        r1 += a[b + 1]
        r2 += a[b + 2]
        r3 += a[b + 3]
        r4 += a[b + 4]
        r5 += a[b + 5]
        r6 += a[b + 6]
        r7 += a[b + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@_ijit
def _scratch() -> tuple[np.ndarray, np.ndarray]:
    """Work space of :func:`_pairwise` (allocated once per kernel call)."""
    return np.empty((192, 3), dtype=np.int64), np.empty(192)


@_jit
def _pairwise(a: np.ndarray, lo: int, n: int, stack: np.ndarray, vals: np.ndarray) -> float:
    """Sum of ``a[lo:lo + n]`` in numpy's pairwise order (``np.add.reduce`` of a row).

    Halves (rounded down to a multiple of 8) down to blocks of at most 128, summed left
    + right; the recursion is unrolled on the explicit stack ``stack`` / ``vals``
    (:func:`_scratch`; numba's cache mishandles recursive kernels).
    """
    if n <= 128:
        return _pairwise_leaf(a, lo, n)
    sp, vp = 1, 0
    stack[0, 0], stack[0, 1], stack[0, 2] = lo, n, 0
    while sp > 0:
        sp -= 1
        c_lo, c_n, stage = stack[sp, 0], stack[sp, 1], stack[sp, 2]
        if c_n <= 128:
            vals[vp] = _pairwise_leaf(a, c_lo, c_n)
            vp += 1
        elif stage == 0:
            n2 = c_n // 2
            n2 -= n2 % 8
            stack[sp, 2] = 1  # combine after both halves
            stack[sp + 1, 0], stack[sp + 1, 1], stack[sp + 1, 2] = c_lo + n2, c_n - n2, 0
            stack[sp + 2, 0], stack[sp + 2, 1], stack[sp + 2, 2] = c_lo, n2, 0  # left first
            sp += 3
        else:
            vp -= 1
            vals[vp - 1] = vals[vp - 1] + vals[vp]
    return vals[0]


@_vjit
def exact_lowess(x: np.ndarray, y: np.ndarray, xv: np.ndarray, k: int,
                 given: bool) -> np.ndarray:
    """Lowess at ``xv`` from the raw ``k``-row windows of sorted ``x``.

    The numpy reference's operations in its order, its sums in numpy's pairwise order.

    Parameters
    ----------
    x, y : ndarray of float64
        Sorted abscissae and the ordinates alongside.
    xv : ndarray of float64
        Sorted evaluation points (``x`` itself for a fit at every row).
    k : int
        Rows per window (``2 <= k <= x.size``).
    given : bool
        ``xv`` is not ``x``: a window with fewer than two positively weighted rows gives
        ``nan`` (else the row's own label).

    Returns
    -------
    ndarray
        The fit; ``nan`` where the window has radius 0 (the caller's tie rule applies).
    """
    out = np.empty(xv.size)
    w = np.empty(k)
    t = np.empty(k)
    st, sv = _scratch()
    for j in range(xv.size):
        val = xv[j]
        lo = _window_start(x, k, val)
        radius = max(val - x[lo], x[lo + k - 1] - val)
        if not radius > 0.0:
            out[j] = np.nan
            continue
        xw, yw = x[lo: lo + k], y[lo: lo + k]  # views: indices from 0 (no wraparound)
        good = 0
        for i in range(k):
            d = abs(xw[i] - val) / radius
            wi = (1.0 - d ** 3.0) ** 3.0
            w[i] = wi
            if wi > 1e-12:
                good += 1
        if good < 2:
            out[j] = np.nan if given else y[j]
            continue
        total = _pairwise(w, 0, k, st, sv)
        for i in range(k):
            w[i] = w[i] / total
            t[i] = w[i] * xw[i]
        xbar = _pairwise(t, 0, k, st, sv)
        for i in range(k):
            e = xw[i] - xbar
            t[i] = w[i] * (e * e)
        sq = max(_pairwise(t, 0, k, st, sv), 1e-12)
        lever = val - xbar
        for i in range(k):
            t[i] = w[i] * (1.0 + lever * (xw[i] - xbar) / sq) * yw[i]
        out[j] = _pairwise(t, 0, k, st, sv)
    return out


@_jit
def bin_sums(x: np.ndarray, y: np.ndarray, edges: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row count, mean score and label sum of every bin ``[edges[b], edges[b + 1])``.

    As ``np.add.reduceat`` computes the sums, bit for bit: a bin's first element plus
    numpy's pairwise sum of the rest.
    """
    nb = edges.size - 1
    cnt, mx, sy = np.empty(nb), np.empty(nb), np.empty(nb)
    st, sv = _scratch()
    for b in range(nb):
        s, e = edges[b], edges[b + 1]
        cnt[b] = e - s
        mx[b] = (x[s] + _pairwise(x, s + 1, e - s - 1, st, sv)) / cnt[b]
        sy[b] = y[s] + _pairwise(y, s + 1, e - s - 1, st, sv)
    return cnt, mx, sy


@_jit
def prefix_at(x: np.ndarray, y: np.ndarray, edges: np.ndarray, mx: np.ndarray,
              rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return running sums of deviations from bin means and of labels at sorted ``rows``.

    ``dev[r] = sum over i < r of (x[i] - mx[bin(i)])`` and ``cy[r] = sum over i < r of
    y[i]``, added left to right as ``np.cumsum`` adds them (bit for bit), read only at the
    rows asked for: one pass over the rows, nothing of their size stored.
    """
    dev, cy = np.empty(rows.size), np.empty(rows.size)
    ptr = 0
    while ptr < rows.size and rows[ptr] == 0:
        dev[ptr] = cy[ptr] = 0.0
        ptr += 1
    run_d, run_c = 0.0, 0.0
    for b in range(edges.size - 1):
        if ptr == rows.size:
            break
        m = mx[b]
        for i in range(edges[b], edges[b + 1]):
            run_d += x[i] - m
            run_c += y[i]
            while ptr < rows.size and rows[ptr] == i + 1:
                dev[ptr], cy[ptr] = run_d, run_c
                ptr += 1
    return dev, cy


@_ijit
def _bin_of(edges: np.ndarray, row: int) -> int:
    """Bin holding ``row`` (``searchsorted(edges, row, side="right") - 1``)."""
    lo, hi = 0, edges.size
    while lo < hi:
        mid = (lo + hi) // 2
        if edges[mid] <= row:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


@_jit
def _pieces(x: np.ndarray, y: np.ndarray, xv: np.ndarray, k: int, edges: np.ndarray,
            mx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows of the grid points and the pieces of the two cut bins inside them.

    Returns, per point, the window's left row and first and last bin touched, its radius,
    and per point and piece (``[stat, point, piece]``) the row count, the mean score and the
    label sum; a piece's mean is its bin's mean plus the mean deviation from prefix sums,
    as in the numpy reference (an empty piece sits at the point itself).
    """
    g = xv.size
    win = np.empty((g, 3), dtype=np.int64)
    radius = np.empty(g)
    bounds = np.empty(4 * g, dtype=np.int64)  # lo0, hi0, lo1, hi1 of every point
    for j in range(g):
        val = xv[j]
        left = _window_start(x, k, val)
        right = left + k
        radius[j] = max(val - x[left], x[right - 1] - val)
        bl, br = _bin_of(edges, left), _bin_of(edges, right - 1)
        win[j, 0], win[j, 1], win[j, 2] = left, bl, br
        bounds[4 * j], bounds[4 * j + 1] = left, min(edges[bl + 1], right)
        bounds[4 * j + 2] = max(edges[br], left) if br > bl else right
        bounds[4 * j + 3] = right
    order = np.argsort(bounds, kind="mergesort")
    dev_s, cy_s = prefix_at(x, y, edges, mx, bounds[order])
    dev, cy = np.empty(4 * g), np.empty(4 * g)
    dev[order] = dev_s
    cy[order] = cy_s
    piece = np.empty((3, g, 2))
    for j in range(g):
        for q in range(2):
            a, b = 4 * j + 2 * q, 4 * j + 2 * q + 1
            c = float(bounds[b] - bounds[a])
            piece[0, j, q] = c
            piece[2, j, q] = cy[b] - cy[a]
            if c > 0:
                piece[1, j, q] = mx[win[j, 1 + q]] + (dev[b] - dev[a]) / c
            else:
                piece[1, j, q] = xv[j]
    return win, radius, piece


@_vjit
def binned_lowess(x: np.ndarray, y: np.ndarray, xv: np.ndarray, k: int,
                  edges: np.ndarray) -> np.ndarray:
    """Binned lowess at ``xv`` (the numpy reference: ``_calsuite.binned_lowess_fit``).

    Parameters
    ----------
    x, y : ndarray of float64
        Sorted abscissae and the ordinates alongside.
    xv : ndarray of float64
        Sorted evaluation points.
    k : int
        Rows per window.
    edges : ndarray of int64
        Row offsets of the bins (``_calsuite._bin_edges``).

    Returns
    -------
    ndarray
        The fit; ``nan`` where fewer than two rows have positive weight or the window has
        radius 0.
    """
    cnt, mx, sy = bin_sums(x, y, edges)
    win, radii, piece = _pieces(x, y, xv, k, edges, mx)
    return fit_from_bins(xv, cnt, mx, sy, np.diff(edges), win, radii, piece)


@_vjit
def fit_from_bins(xv: np.ndarray, cnt: np.ndarray, mx: np.ndarray, sy: np.ndarray,
                  n_b: np.ndarray, win: np.ndarray, radii: np.ndarray,
                  piece: np.ndarray) -> np.ndarray:
    """Fit the binned lowess at every grid point from the bins' and windows' aggregates.

    The fitting loop of :func:`binned_lowess`: per point the tricube weights of the whole
    bins inside its window (at their mean scores) and of the two cut pieces, the weighted
    mean, variance (floored at 1e-12) and local line. Whoever computes the aggregates (the
    rows: :func:`bin_sums`, :func:`_pieces`; the runs of cells:
    ``ecgaudit.metrics._runsuite``) gets the same arithmetic.

    Parameters
    ----------
    xv : ndarray of float64
        Sorted evaluation points.
    cnt : ndarray of float64
        Row count of every bin.
    mx : ndarray of float64
        Mean score of every bin.
    sy : ndarray of float64
        Label sum of every bin.
    n_b : ndarray of int64
        Row count of every bin as an integer (to count the rows of positive weight).
    win : ndarray of int64, shape (points, 3)
        Per point: the window's first row (not read here), its first bin and its last bin.
    radii : ndarray of float64
        Window radius of every point.
    piece : ndarray of float64, shape (3, points, 2)
        ``piece[stat, point, q]``: row count (stat 0), mean score (1) and label sum (2) of
        the part inside the window of its first (``q = 0``) and last (``q = 1``) bin; an
        empty piece has count 0 and sits at the point itself.

    Returns
    -------
    ndarray
        The fit; ``nan`` where fewer than two rows have positive weight or the window has
        radius 0.
    """
    cmx = cnt * mx
    out = np.empty(xv.size)
    # Terms of the sums over a window's whole bins, summed in numpy's pairwise order
    # (closer to BLAS' blocked dot products than one running sum).
    tb, a_tot = np.empty(cnt.size), np.empty(cnt.size)
    a_x, a_y = np.empty(cnt.size), np.empty(cnt.size)
    st, sv = _scratch()
    for j in range(xv.size):
        val, radius = xv[j], radii[j]
        if not radius > 0.0:  # at least k tied scores: the caller's tie rule
            out[j] = np.nan
            continue
        bl, br = win[j, 1], win[j, 2]
        c0, m0, s0 = piece[0, j, 0], piece[1, j, 0], piece[2, j, 0]
        c1, m1, s1 = piece[0, j, 1], piece[1, j, 1], piece[2, j, 1]
        t0, t1 = _tricube(abs(m0 - val), radius), _tricube(abs(m1 - val), radius)
        w0, w1 = t0 * c0, t1 * c1
        # The whole bins inside the window, as views indexed from 0 by simple loops (no
        # negative-index checks: LLVM vectorises them).
        m = br - bl - 1
        w_mx, w_cnt, w_cmx = mx[bl + 1: br], cnt[bl + 1: br], cmx[bl + 1: br]
        w_sy, w_n = sy[bl + 1: br], n_b[bl + 1: br]
        good = 0
        for i in range(m):
            t = _tricube(abs(w_mx[i] - val), radius)
            tb[i], a_tot[i], a_x[i], a_y[i] = t, t * w_cnt[i], t * w_cmx[i], t * w_sy[i]
            good += w_n[i] if t > 1e-12 else 0
        total = _pairwise(a_tot, 0, m, st, sv) + (w0 + w1)
        good += (int(c0) if t0 > 1e-12 else 0) + (int(c1) if t1 > 1e-12 else 0)
        if good < 2:
            out[j] = np.nan
            continue
        xbar = (_pairwise(a_x, 0, m, st, sv) + (w0 * m0 + w1 * m1)) / total
        s_y = _pairwise(a_y, 0, m, st, sv)
        for i in range(m):
            df = w_mx[i] - xbar
            tdf = tb[i] * df
            a_tot[i], a_x[i] = (tdf * df) * w_cnt[i], tdf * w_sy[i]
        sq, s_xy = _pairwise(a_tot, 0, m, st, sv), _pairwise(a_x, 0, m, st, sv)
        d0, d1 = m0 - xbar, m1 - xbar
        sq = max((sq + (w0 * d0 * d0 + w1 * d1 * d1)) / total, 1e-12)
        s_y += t0 * s0 + t1 * s1
        s_xy += t0 * d0 * s0 + t1 * d1 * s1
        out[j] = (s_y + (val - xbar) * s_xy / sq) / total
    return out


@_jit
def split_by_group(codes: np.ndarray, n_groups: int, y: np.ndarray, p: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``y`` and ``p`` reordered group by group, keeping their order within a group.

    The same as ``idx = np.argsort(codes, kind="stable"); y[idx], p[idx]`` (a counting
    sort: one pass to count, one to place), without the sort.
    """
    start = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(codes.size):
        start[codes[i] + 1] += 1
    for g in range(n_groups):
        start[g + 1] += start[g]
    ys, ps = np.empty_like(y), np.empty_like(p)
    for i in range(codes.size):
        c = codes[i]
        j = start[c]
        ys[j], ps[j] = y[i], p[i]
        start[c] = j + 1
    return ys, ps


@_jit
def merge_unique(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.union1d(a, b)`` of two sorted int64 arrays, by one merge."""
    out = np.empty(a.size + b.size, dtype=np.int64)
    i = j = n = 0
    while i < a.size or j < b.size:
        if j == b.size or (i < a.size and a[i] <= b[j]):
            v = a[i]
            i += 1
        else:
            v = b[j]
            j += 1
        if n == 0 or out[n - 1] != v:
            out[n] = v
            n += 1
    return out[:n].copy()
