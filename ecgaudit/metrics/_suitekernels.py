"""Compiled passes of the calibration suite over a group's sorted rows (issue 19).

* :func:`split_by_cell` - ``split_by_group`` of the codes ``cell_codes[cells]`` read on the
  fly (the extras line every grouping up from the finest cells without a gathered copy of
  the codes); identical to a stable argsort and gather.
* :func:`interp_abs_error` - ``|np.interp(p, xp, fp) - p|`` and its maximum in one pass
  (numpy: an interpolation, a subtraction, an absolute value and a maximum, four passes);
  the same arithmetic as ``np.interp``, so identical values
  (``tests/test_suitekernels.py``).
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._compile import _CACHE, HAVE_NUMBA, _jit

if HAVE_NUMBA:  # float division by 0 gives inf/nan as in numpy (no Python check per op)
    import numba

    _vjit = numba.njit(cache=_CACHE, nogil=True, error_model="numpy")
else:  # pragma: no cover
    _vjit = _jit

__all__ = ["interp_abs_error", "split_by_cell"]


@_jit
def split_by_cell(cells: np.ndarray, cell_codes: np.ndarray, n_groups: int, y: np.ndarray,
                  p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_by_group` of the codes ``cell_codes[cells]``, read on the fly."""
    start = np.zeros(n_groups + 1, dtype=np.int64)
    for i in range(cells.size):
        start[cell_codes[cells[i]] + 1] += 1
    for g in range(n_groups):
        start[g + 1] += start[g]
    ys, ps = np.empty_like(y), np.empty_like(p)
    for i in range(cells.size):
        c = cell_codes[cells[i]]
        j = start[c]
        ys[j], ps[j] = y[i], p[i]
        start[c] = j + 1
    return ys, ps


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
