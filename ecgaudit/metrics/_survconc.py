"""Weighted concordance in O(n log n) with a Fenwick (binary indexed) tree over risk ranks.

For rows sorted by time, event ``i`` (code 1) and any row ``j`` form a comparable pair when
``T_j > T_i``, or ``T_j == T_i`` and ``j`` is censored (a censoring at the event's time is
taken to happen after it; two events at the same time are not comparable). This is the
convention of scikit-survival's ``concordance_index_censored``. A pair is concordant when
``r_i > r_j`` and counts 1/2 when the risks are tied (equal integer rank: scores within
``1e-8`` of each other share a rank).

The weighted sums are

    N = sum_i a_i sum_{j comparable} w_j [1(r_i > r_j) + 1/2 1(r_i = r_j)],
    D = sum_i a_i sum_{j comparable} w_j,

with ``a_i = w_i x case weight`` (1 for Harrell's C, ``1 / G(T_i)^2`` for Uno's C). The
second pass, ascending in time, gives each row's share as the *later* member of a pair,
so that ``dN/dw_k`` and ``dD/dw_k`` (the infinitesimal-jackknife influence of every row)
come out of the same two O(n log n) passes.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._kernels import _jit

__all__ = ["TIE_TOL", "concordance_sums", "risk_ranks"]

#: Risk scores closer than this are tied (as scikit-survival's ``tied_tol``).
TIE_TOL = 1e-8


def risk_ranks(score: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense integer ranks (1-based) of ``score``; values within ``TIE_TOL`` share a rank.

    Returns
    -------
    ranks : ndarray of int64
    n_ranks : int
    """
    s = np.asarray(score, dtype=np.float64)
    order = np.argsort(s, kind="stable")
    new = np.concatenate([[True], np.diff(s[order]) > TIE_TOL]) if s.size else np.zeros(0, bool)
    ranks = np.empty(s.size, dtype=np.int64)
    ranks[order] = np.cumsum(new)
    return ranks, int(new.sum())


@_jit
def _add(tree, k, v):
    n = tree.size - 1
    while k <= n:
        tree[k] += v
        k += k & (-k)


@_jit
def _prefix(tree, k):
    s = 0.0
    while k > 0:
        s += tree[k]
        k -= k & (-k)
    return s


@_jit
def _case_pass(time, event, rank, w, a, n_ranks, cn, cd):
    # Descending time: rows with a later time (or censored at the same time) are in the
    # tree when event i is queried.
    tree = np.zeros(n_ranks + 1)
    total = 0.0
    n = time.size
    hi = n
    while hi > 0:
        lo = hi - 1
        while lo > 0 and time[lo - 1] == time[hi - 1]:
            lo -= 1
        for k in range(lo, hi):
            if event[k] != 1 and w[k] > 0:
                _add(tree, rank[k], w[k])
                total += w[k]
        for k in range(lo, hi):
            if event[k] == 1:
                below = _prefix(tree, rank[k] - 1)
                tied = _prefix(tree, rank[k]) - below
                cn[k] = below + 0.5 * tied
                cd[k] = total
        for k in range(lo, hi):
            if event[k] == 1 and w[k] > 0:
                _add(tree, rank[k], w[k])
                total += w[k]
        hi = lo


@_jit
def _control_pass(time, event, rank, a, n_ranks, kn, kd):
    # Ascending time: events with an earlier time (or, for a censored row, the same time)
    # are in the tree, weighted by a.
    tree = np.zeros(n_ranks + 1)
    total = 0.0
    n = time.size
    lo = 0
    while lo < n:
        hi = lo + 1
        while hi < n and time[hi] == time[lo]:
            hi += 1
        for k in range(lo, hi):
            if event[k] == 1:
                at = _prefix(tree, rank[k])
                tied = at - _prefix(tree, rank[k] - 1)
                kn[k] = (total - at) + 0.5 * tied
                kd[k] = total
        for k in range(lo, hi):
            if event[k] == 1 and a[k] > 0:
                _add(tree, rank[k], a[k])
                total += a[k]
        for k in range(lo, hi):
            if event[k] != 1:
                at = _prefix(tree, rank[k])
                tied = at - _prefix(tree, rank[k] - 1)
                kn[k] = (total - at) + 0.5 * tied
                kd[k] = total
        lo = hi


def concordance_sums(time: np.ndarray, event: np.ndarray, rank: np.ndarray, n_ranks: int,
                     w: np.ndarray, case_weight: np.ndarray | None = None,
                     influence: bool = False
                     ) -> tuple[float, float, np.ndarray | None, np.ndarray | None]:
    """Weighted concordant and comparable sums ``N`` and ``D`` (see the module docstring).

    Parameters
    ----------
    time, event, rank : ndarray
        Rows sorted by time ascending: time, event code (1 event; anything else is not an
        event of interest and may be a comparable later member), 1-based risk rank.
    n_ranks : int
        Largest rank.
    w : ndarray of float
        Row weights (bootstrap counts or ones).
    case_weight : ndarray of float, optional
        Extra weight of each row as the earlier (event) member: ``1 / G(T)^2`` for Uno's C,
        0 for events past the truncation time. Ones when omitted.
    influence : bool
        Also return ``dN/dw_k`` and ``dD/dw_k`` per row (needs unit ``case_weight``).

    Returns
    -------
    N, D : float
    dN, dD : ndarray or None
    """
    time = np.ascontiguousarray(time, dtype=np.float64)
    event = np.ascontiguousarray(event, dtype=np.int8)
    rank = np.ascontiguousarray(rank, dtype=np.int64)
    w = np.ascontiguousarray(w, dtype=np.float64)
    cw = np.ones_like(w) if case_weight is None else np.asarray(case_weight, np.float64)
    a = np.ascontiguousarray(w * cw)
    cn = np.zeros(time.size)
    cd = np.zeros(time.size)
    _case_pass(time, event, rank, w, a, n_ranks, cn, cd)
    num = float(np.dot(a, cn))
    den = float(np.dot(a, cd))
    if not influence:
        return num, den, None, None
    kn = np.zeros(time.size)
    kd = np.zeros(time.size)
    _control_pass(time, event, rank, a, n_ranks, kn, kd)
    return num, den, cw * cn + kn, cw * cd + kd
