"""Compiled passes of the calibration suite over a group's sorted rows (issue 19).

* :func:`interp_abs_error` - ``|np.interp(p, xp, fp) - p|`` and its maximum in one pass
  (numpy: an interpolation, a subtraction, an absolute value and a maximum, four passes);
  the same arithmetic as ``np.interp``, so identical values
  (``tests/test_suitekernels.py``).
* :func:`select_ranks` - order statistics of a large group's errors (E50, E90) from a
  bucket count of their bit patterns and a sort of the few values in the wanted buckets,
  instead of ``ndarray.partition`` (introselect); the same values.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._compile import _CACHE, HAVE_NUMBA, _jit

if HAVE_NUMBA:  # float division by 0 gives inf/nan as in numpy (no Python check per op)
    import numba

    _vjit = numba.njit(cache=_CACHE, nogil=True, error_model="numpy")
    _vijit = numba.njit(cache=_CACHE, nogil=True, error_model="numpy", inline="always")
else:  # pragma: no cover
    _vjit = _vijit = _jit

__all__ = ["interp_abs_error", "select_ranks"]


@_vjit
def interp_abs_error(p: np.ndarray, xp: np.ndarray, fp: np.ndarray, out: np.ndarray
                     ) -> float:
    """``out = |np.interp(p, xp, fp) - p|`` for sorted ``p``; returns ``out``'s maximum.

    ``np.interp``'s own steps (``xp`` strictly increasing, at least two points): the end
    values outside ``xp``, ``fp[j]`` at a knot, else ``slope * (x - xp[j]) + fp[j]`` with
    numpy's retry from the right knot when that is nan; ``nan`` if any error is ``nan``
    (as ``np.max``). The knot is found by walking forward (``p`` sorted), not by bisection.
    """
    last = xp.size - 1
    j = 0
    top = -np.inf
    nan = False
    for i in range(p.size):
        x = p[i]
        while j < last and xp[j + 1] <= x:
            j += 1
        if x != x:
            v = x
        elif x < xp[0]:
            v = fp[0]
        elif x > xp[last]:
            v = fp[last]
        elif j == last or xp[j] == x:
            v = fp[j]
        else:
            slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
            v = slope * (x - xp[j]) + fp[j]
            if v != v:
                v = slope * (x - xp[j + 1]) + fp[j + 1]
                if v != v and fp[j] == fp[j + 1]:
                    v = fp[j]
        e = abs(v - x)
        out[i] = e
        if e != e:
            nan = True
        elif e > top:
            top = e
    return np.nan if nan else top


#: Bits of a value's order key kept by the bucket of :func:`select_ranks` (2^18 buckets:
#: sign, exponent and 6 mantissa bits; a bucket spans 1/64 of a binade).
_SHIFT = np.uint64(46)
_SIGN = np.uint64(1 << 63)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


@_vijit
def _key(bits: np.uint64) -> np.int64:
    """Bucket of an IEEE double's bit pattern, in the order of the values."""
    k = (bits ^ _ALL) if bits & _SIGN else (bits | _SIGN)
    return np.int64(k >> _SHIFT)


@_vjit
def select_ranks(a: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """``np.sort(a)[ranks]`` of finite ``a`` (``ranks`` sorted) without a partition.

    A double's bit pattern, with the sign bit flipped (all bits for negative values), orders
    like its value, so one pass counts the values per bucket of the top 18 bits of that key,
    the buckets holding the wanted ranks are found from the counts, and a second pass
    gathers only those buckets' values (a few hundred of a million), which are sorted.
    Exact order statistics: the values themselves (``-0.0`` and ``0.0`` count as distinct).
    """
    bits = a.view(np.uint64)
    counts = np.zeros(1 << 18, dtype=np.int32)
    for i in range(bits.size):
        counts[_key(bits[i])] += 1
    n_r = ranks.size
    bucket = np.empty(n_r, dtype=np.int64)
    before = np.empty(n_r, dtype=np.int64)
    seen = 0
    r = 0
    for b in range(counts.size):
        while r < n_r and ranks[r] < seen + counts[b]:
            bucket[r], before[r] = b, seen
            r += 1
        seen += counts[b]
        if r == n_r:
            break
    out = np.empty(n_r)
    for r in range(n_r):
        if r > 0 and bucket[r] == bucket[r - 1]:
            continue
        held = np.empty(counts[bucket[r]])
        m = 0
        for i in range(bits.size):
            if _key(bits[i]) == bucket[r]:
                held[m] = a[i]
                m += 1
        held.sort()
        for s in range(r, n_r):
            if bucket[s] == bucket[r]:
                out[s] = held[ranks[s] - before[s]]
    return out
