"""The binned bootstrap's draws and stratum sweeps, fused stratum by stratum.

Without patient clusters every sampler slot is one row, and the slots of a stratum are one
run of consecutive slots whose draws stay inside the run. :func:`draw_sweep` therefore takes
one stratum at a time: it counts the run's draws into a byte per slot (the run's counts stay
in the L1 cache), then adds every slot's count to the stratum's cells of each task, whose
``width`` counts are one small block of memory. The (score bin, label) code of a row is
stored relative to its stratum, as ``uint16`` when ``width <= 65536`` (half the bytes that
every replicate streams), else ``int32``.

The cell counts are the same integers as counting all draws first and sweeping task by
task (integer sums do not depend on order), so the statistics stay bit-identical (tested).
A slot drawn more than ``cap`` times keeps its extra draws in an overflow list, added pick by
pick.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._compile import _jit
from ecgaudit.metrics._drawkernels import pick

__all__ = ["draw_sweep", "stratum_runs"]


def stratum_runs(slot_start: np.ndarray, slot_cells: np.ndarray,
                 width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Split one-row slots into stratum runs for :func:`draw_sweep`, if they form them.

    Parameters
    ----------
    slot_start : ndarray of int64
        First slot of every slot's stratum (the sampler's ``slot_start``).
    slot_cells : ndarray of int32, shape (T, n_slots)
        Cell of every task of every slot's row: ``stratum * width + 2 * bin + label``.
    width : int
        Cells per stratum.

    Returns
    -------
    tuple of ndarray or None
        ``(bounds, run_stratum, codes)``: the runs' slot bounds (``n_runs + 1``), each run's
        cell stratum and every slot's code relative to its stratum (``uint16`` if ``width``
        fits, else ``int32``); ``None`` when a run's rows do not share one cell stratum or
        two runs share one (the caller then keeps the unfused path).
    """
    n = slot_start.size
    if n == 0 or slot_cells.shape[1] != n:
        return None
    first = np.flatnonzero(np.r_[True, slot_start[1:] != slot_start[:-1]])
    if not np.array_equal(slot_start[first], first):
        return None
    bounds = np.r_[first, n].astype(np.int64)
    run_stratum = (slot_cells[0, first] // width).astype(np.int64)
    if np.unique(run_stratum).size != run_stratum.size:
        return None
    base = np.repeat((run_stratum * width).astype(slot_cells.dtype), np.diff(bounds))
    codes = np.empty(slot_cells.shape, dtype=np.uint16 if width <= 1 << 16 else np.int32)
    for t in range(slot_cells.shape[0]):  # task by task: a few row-length temporaries
        rel = slot_cells[t] - base
        if rel.min() < 0 or rel.max() >= width:  # a row outside its run's stratum
            return None
        codes[t] = rel
    return bounds, run_stratum, codes


@_jit
def draw_sweep(key, cap, bounds, run_stratum, codes, width, n_cells, cnt, ovf, acc):
    """Stratum cells of every task of replicate ``key`` into ``acc`` (T * ``n_cells``).

    ``codes[t, s]`` is slot ``s``'s code relative to its stratum; runs ``bounds[f] ..
    bounds[f + 1]`` are strata ``run_stratum[f]`` (distinct), whose cells ``acc`` gets zeroed
    here. Strata without a run keep whatever ``acc`` held: the caller zeroes ``acc`` once.
    ``cnt`` (uint8) and ``ovf`` (int64) are scratch of at least the longest run.
    """
    n_t = codes.shape[0]
    for f in range(bounds.size - 1):
        lo = bounds[f]
        m = bounds[f + 1] - lo
        cf = cnt[:m]
        n_ovf = -1
        if cap == 255:  # the picks first (vectorised), then counted without a cap check
            n_ovf = _count_picks(key, lo, m, cf, ovf)
        if n_ovf < 0:  # a byte wrapped (a slot drawn 256+ times) or a smaller cap: one by one
            n_ovf = _count_capped(key, cap, lo, m, cf, ovf)
        base = run_stratum[f] * width
        for t in range(n_t):
            a = acc[t * n_cells + base:t * n_cells + base + width]
            a[:] = 0
            ct = codes[t, lo:lo + m]
            for s in range(m):
                a[np.uint64(ct[s])] += cf[s]
            for e in range(n_ovf):
                a[np.uint64(ct[ovf[e]])] += 1


@_jit
def _count_picks(key, lo, m, cf, buf):
    """Count run ``lo .. lo + m``'s picks into bytes ``cf``; 0, or -1 if a byte wrapped."""
    b = buf[:m]
    for j in range(m):  # no dependence between slots: the hash vectorises
        b[j] = pick(key, lo + j, m)
    cf[:] = 0
    for j in range(m):
        cf[np.uint64(b[j])] += 1  # bytes wrap past 255
    total = 0
    for j in range(m):
        total += cf[j]
    return 0 if total == m else -1  # wrapped bytes lose 256 each


@_jit
def _count_capped(key, cap, lo, m, cf, ovf):
    """Count the picks into bytes ``cf`` up to ``cap``; the rest in ``ovf``: their number."""
    cf[:] = 0
    n_ovf = 0
    for j in range(m):
        # Unsigned indices: numba then skips the negative-index check.
        k = np.uint64(pick(key, lo + j, m))
        c = cf[k]
        if c == cap:
            ovf[n_ovf] = k
            n_ovf += 1
        else:
            cf[k] = c + 1
    return n_ovf
