"""Bootstrap replicates drawn per cell: the stratified multinomial over a summary's cells.

A pooled summary audit holds, per task, the cells (finest stratum, score bin, label) and
their ECG counts. The row bootstrap of the ECGs those cells describe draws, in every
stratum of ``N`` ECGs, ``N`` ECGs with replacement (stratified by the finest stratum, as
:class:`ecgaudit.metrics._bootsample.Sampler` does without patients); a replicate's cell
counts are then multinomial, ``Multinomial(N, n_c / N)`` over the stratum's cells.
:func:`cell_replicates` draws exactly that distribution without touching an ECG: by
sequential conditional binomials, cell ``c`` of the stratum gets
``Binomial(N - drawn so far, n_c / (N - n of the cells before))`` (the last cell the rest),
so a replicate costs O(cells), whatever the number of ECGs.

Every binomial is one inversion of one uniform of the project's counter-based stream
(:mod:`ecgaudit.metrics._hashrng`): cell ``j`` (its position among all tasks' cells) of
replicate ``b`` uses ``u(seed, b, j)``, so replicates depend on (seed, replicate, cell)
only, not on threads or batching. Small means invert from 0 (the recurrence of the
binomial probabilities); larger ones search outward from the mode, alternating sides
(an inversion over a reordering of the outcomes: still exactly the binomial distribution,
at O(sqrt(variance)) steps).

The replicate's counts then go through the binned mode's per-replicate steps
(:func:`ecgaudit.metrics._binfused.finish_task`: group cells, scan, recalibration fit).
With ``counts`` given instead (a summary's replicate columns, e.g. the sites'
patient-hashed Poisson weights), the same kernel uses them as the replicate's cell counts.
"""

from __future__ import annotations

import math

import numpy as np

from ecgaudit.metrics._binfused import finish_task
from ecgaudit.metrics._compile import _ijit, _jit, _pjit, prange
from ecgaudit.metrics._drawkernels import _counter, _mix64, _to_unit

__all__ = ["binomial", "cell_replicates", "stratum_draws"]

#: Below this mean the binomial is inverted from 0, above it from the mode.
SMALL_MEAN = 30.0


@_ijit
def _from_zero(n, p, u):
    """Binomial(n, p) by inversion from 0, ``p <= 1/2`` and ``n p`` small."""
    q = 1.0 - p
    s = p / q
    a = (n + 1) * s
    r = math.exp(n * math.log1p(-p))
    x = 0
    while u > r:
        u -= r
        x += 1
        r *= a / x - s
        if x >= n or r <= 0.0:  # the rest of the mass is below rounding
            break
    return x


@_ijit
def _from_mode(n, p, u):
    """Binomial(n, p) by inversion outward from the mode, alternating sides."""
    q = 1.0 - p
    m = math.floor((n + 1) * p)
    if m > n:
        m = n
    pm = math.exp(math.lgamma(n + 1.0) - math.lgamma(m + 1.0) - math.lgamma(n - m + 1.0)
                  + m * math.log(p) + (n - m) * math.log1p(-p))
    u -= pm
    if u < 0.0:
        return m
    odds = p / q
    lo, hi, plo, phi = m, m, pm, pm
    while True:
        moved = False
        if hi < n:
            phi *= (n - hi) / (hi + 1.0) * odds
            hi += 1
            u -= phi
            if u < 0.0:
                return hi
            moved = True
        if lo > 0:
            plo *= lo / ((n - lo + 1.0) * odds)
            lo -= 1
            u -= plo
            if u < 0.0:
                return lo
            moved = True
        if not moved or (phi <= 0.0 and plo <= 0.0):  # rounding left mass over
            return m


@_ijit
def binomial(n, p, u):
    """Return a Binomial(n, p) draw from one uniform ``u`` in [0, 1) (exact inversion)."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    flip = p > 0.5
    if flip:
        p = 1.0 - p
    x = _from_zero(n, p, u) if n * p < SMALL_MEAN else _from_mode(n, p, u)
    return n - x if flip else x


@_ijit
def _draw_stratum(key, lo, hi, n, out):
    """Multinomial counts of cells ``lo:hi`` (one stratum) into ``out[lo:hi]``."""
    total = 0
    for c in range(lo, hi):
        total += n[c]
    left = total
    mass = total
    for c in range(lo, hi):
        if left == 0 or c == hi - 1:
            out[c] = left
            left = 0
            continue
        u = _to_unit(_mix64(_counter(key, np.uint64(c + 1))))
        x = binomial(left, n[c] / mass, u)
        out[c] = x
        left -= x
        mass -= n[c]


@_jit
def stratum_draws(key, bounds, n, out):
    """One replicate's counts of every cell: a multinomial per stratum.

    ``bounds`` (n_strata + 1) delimits the strata's runs of cells in ``n`` (ECGs per cell);
    ``out`` gets the drawn counts (int64).
    """
    for s in range(bounds.size - 1):
        _draw_stratum(key, bounds[s], bounds[s + 1], n, out)


@_pjit
def cell_replicates(keys, counts, n_chunks, task_lo, bounds, n, code, n_cells, kinds, srcs,
                    dsts, width, reps, thr, ece_bins, refslot, allslot, coarse_of, n_coarse,
                    x_cal, a0, b0, calibration, ist_out, fst_out):
    """Statistics of replicates ``keys`` (drawn) or of ``counts`` columns (given).

    Cells of task ``t`` are ``task_lo[t]:task_lo[t + 1]`` of ``n`` (ECGs) and ``code``
    (stratum x width + 2 bin + label); ``bounds`` the strata's cell runs (global
    positions). ``counts`` (n_all_cells, R) int32 replaces the draws when it has columns.
    The rest as :func:`ecgaudit.metrics._binfused.binned_replicates`; outputs ``ist_out``
    (T, R, 9, S) and ``fst_out`` (T, R, 8, S), zeroed by the caller.
    """
    n_r = ist_out.shape[1]
    n_t = task_lo.size - 1
    n_s = ist_out.shape[3]
    given = counts.shape[1] > 0
    for ch in prange(n_chunks):
        drawn = np.empty(n.size, dtype=np.int64)
        acc = np.empty(n_cells, dtype=np.int32)
        cells = np.empty((n_s + 1) * width, dtype=np.int32)
        coarse = np.empty(n_s * n_coarse * 2, dtype=np.int32)
        for r in range(ch * n_r // n_chunks, (ch + 1) * n_r // n_chunks):
            if given:
                for c in range(n.size):
                    drawn[c] = counts[c, r]
            else:
                stratum_draws(keys[r], bounds, n, drawn)
            for t in range(n_t):
                acc[:] = 0
                for c in range(task_lo[t], task_lo[t + 1]):
                    acc[code[c]] += drawn[c]
                finish_task(acc, t, r, kinds, srcs, dsts, width, reps, thr, ece_bins, refslot,
                            allslot, coarse_of, n_coarse, x_cal, a0, b0, calibration, ist_out,
                            fst_out, cells, coarse)
