"""Sorted cell representation used by the bootstrap engine.

For one task and one grouping, rows are sorted once by ``(group, score, label)`` (tied
scores negatives first; otherwise input order). In that order

* every group is a contiguous segment (``group_bounds``),
* rows with the same group and score form a *tie run* (a (group, score) cell; labels are
  summed inside it),
* the flagged rows (``score >= threshold``) of a group are a suffix of its segment.

A bootstrap replicate is a vector of non-negative integer weights (how often each row was
drawn). Gathering the weights into sorted order and taking three cumulative sums (weight,
weighted label, weighted score) gives every metric of every group by differences at segment,
run and bin boundaries: see :mod:`ecgaudit.metrics._bootstats`.

The strata used for resampling are the *finest cells*: the intersection of the codes of
every grouping, so that any marginal group is a union of strata and keeps its size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SortedCells", "Strata", "build_cells", "finest_strata"]


@dataclass(frozen=True)
class SortedCells:
    """One task sorted within the groups of one grouping.

    Attributes
    ----------
    order : ndarray of int64, shape (n,)
        Row indices in sorted order.
    y, p : ndarray, shape (n,)
        Labels (int8) and scores (float64) in sorted order.
    group_bounds : ndarray of int64, shape (G + 1,)
        Group ``g`` occupies sorted positions ``group_bounds[g]:group_bounds[g + 1]``.
    run_starts, run_ends : ndarray of int64
        Start (inclusive) and end (exclusive) positions of the tie runs; empty when no run
        holds more than one row (then run ``i`` is row ``i``, saving memory).
    run_bounds : ndarray of int64, shape (G + 1,)
        Runs of group ``g`` are ``run_bounds[g]:run_bounds[g + 1]``.
    flag_start : ndarray of int64, shape (G,)
        First sorted position of each group with ``p >= threshold``.
    has_ties : bool
        Whether any run holds more than one row.
    x : ndarray of float64, optional
        Covariate of the recalibration fit in sorted order, when it is not
        ``logit(clip(p))`` (the binned mode fits on coarser bins).
    """

    order: np.ndarray
    y: np.ndarray
    p: np.ndarray
    group_bounds: np.ndarray
    run_starts: np.ndarray
    run_ends: np.ndarray
    run_bounds: np.ndarray
    flag_start: np.ndarray
    has_ties: bool
    x: np.ndarray | None = None

    @property
    def n_groups(self) -> int:
        """Number of groups (including empty ones)."""
        return int(self.group_bounds.size - 1)


@dataclass(frozen=True)
class Strata:
    """The finest cells: the intersection of every grouping's codes.

    Attributes
    ----------
    codes : ndarray of int64, shape (n,)
        Stratum of each row, ``0..n_strata-1``.
    n_strata : int
        Number of non-empty strata.
    """

    codes: np.ndarray
    n_strata: int


def finest_strata(codes: Sequence[np.ndarray], n_rows: int) -> Strata:
    """Intersect the group codes of several groupings into strata.

    Parameters
    ----------
    codes : sequence of ndarray of int
        One code array per grouping, each of length ``n_rows``.
    n_rows : int
        Number of rows.

    Returns
    -------
    Strata
        Strata numbered in order of their sorted code tuples.
    """
    if not codes:
        return Strata(np.zeros(n_rows, dtype=np.int64), 1 if n_rows else 0)
    arrays = [np.asarray(c) for c in codes]  # kept in their integer dtype (no copies)
    radices = [int(a.max()) + 1 if a.size else 1 for a in arrays]
    if n_rows and float(np.prod([float(r) for r in radices])) < 2.0**62:
        # Mixed-radix key, first grouping most significant: same order as the tuples.
        key = np.zeros(n_rows, dtype=np.int64)
        for a, radix in zip(arrays, radices):
            key *= radix
            key += a
        space = math.prod(radices)
        if space <= max(4 * n_rows, 1 << 16):  # np.unique by counting: ranks of present keys
            rank = np.cumsum(np.bincount(key, minlength=space) > 0) - 1
            inverse = rank[key]
        else:
            _, inverse = np.unique(key, return_inverse=True)
    else:
        _, inverse = np.unique(np.stack([a.astype(np.int64) for a in arrays], axis=1), axis=0,
                               return_inverse=True)
    inverse = np.asarray(inverse, dtype=np.int64).reshape(-1)
    return Strata(inverse, int(inverse.max()) + 1 if inverse.size else 0)


def build_cells(
    y: np.ndarray,
    p: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    threshold: float,
    score_order: np.ndarray | None = None,
    x: np.ndarray | None = None,
) -> SortedCells:
    """Sort one task within the groups of one grouping.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels in row order.
    p : ndarray of float
        Scores in row order.
    codes : ndarray of int
        Group index of every row, ``0..n_groups-1``.
    n_groups : int
        Number of groups (groups without rows are allowed).
    threshold : float
        Frozen operating threshold; rows with ``p >= threshold`` are flagged.
    score_order : ndarray, optional
        ``np.lexsort((y, p))`` (by score, tied scores negatives first) if already computed
        (shared between groupings).
    x : ndarray of float, optional
        Recalibration covariate per row (row order), default ``logit(clip(p))``; it must
        not decrease with the score.

    Returns
    -------
    SortedCells
    """
    p = np.asarray(p, dtype=np.float64)
    codes = np.asarray(codes, dtype=np.int64)
    if score_order is None:
        score_order = np.lexsort((np.asarray(y), p))
    order = score_order[np.argsort(codes[score_order], kind="stable")]
    ys = np.asarray(y, dtype=np.int8)[order]
    ps = p[order]
    cs = codes[order]
    n = order.size
    counts = np.bincount(cs, minlength=n_groups)
    group_bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if n:
        new_run = np.concatenate([[True], (np.diff(cs) != 0) | (np.diff(ps) != 0)])
    else:
        new_run = np.zeros(0, dtype=bool)
    run_starts = np.flatnonzero(new_run).astype(np.int64)
    run_ends = np.concatenate([run_starts[1:], [n]]).astype(np.int64)
    run_group = cs[run_starts]
    run_counts = np.bincount(run_group, minlength=n_groups)
    run_bounds = np.concatenate([[0], np.cumsum(run_counts)]).astype(np.int64)
    # First flagged row of each group: count unflagged rows per group (sorted by p inside).
    unflagged = np.bincount(cs[ps < threshold], minlength=n_groups)
    flag_start = group_bounds[:-1] + unflagged
    has_ties = bool(run_starts.size < n)
    if not has_ties:
        run_starts = run_ends = np.zeros(0, dtype=np.int64)
    return SortedCells(
        order=order.astype(np.int32 if n < 2**31 else np.int64),
        y=ys,
        p=ps,
        group_bounds=group_bounds,
        run_starts=run_starts,
        run_ends=run_ends,
        run_bounds=run_bounds,
        flag_start=flag_start.astype(np.int64),
        has_ties=has_ties,
        x=None if x is None else np.asarray(x, dtype=np.float64)[order],
    )
