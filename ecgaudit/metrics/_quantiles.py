"""numpy's ``quantile`` / ``median`` (default linear rule) without its O(n) copies and sorts.

``numpy.quantile(a, q)`` copies ``a`` and partitions the copy even when ``a`` is sorted;
``numpy.median`` and a second ``numpy.quantile`` of the same array partition it twice.
:func:`sorted_quantile` reads the order statistics of an already sorted array directly and
:func:`median_and_quantile` gets both from one in-place partition; both then apply numpy's
own interpolation step by step (``_get_indexes``, ``_get_gamma``, ``_lerp`` of
``numpy/lib/_function_base_impl.py``), so the results are bit for bit numpy's
(``tests/test_lowesskernels.py`` checks this on random and tied data). Finite inputs only.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._compile import HAVE_NUMBA
from ecgaudit.metrics._suitekernels import select_ranks

__all__ = ["median_and_quantile", "sorted_quantile"]

#: Smallest array whose order statistics :func:`median_and_quantile` selects by bucket
#: counts (``_suitekernels.select_ranks``, the same values) instead of a partition.
SELECT_ROWS = 40_000  # below, numpy's partition is faster


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Interpolate as numpy's ``_lerp``: ``a + (b - a) * t``, from ``b`` where ``t >= 0.5``."""
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _indexes(n: int, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper order statistics and weights of ``q`` (numpy's linear method)."""
    virtual = (n - 1) * np.asarray(q, dtype=np.float64)
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1
    nxt[above] = -1
    below = virtual < 0
    prev[below] = 0
    nxt[below] = 0
    prev_i, next_i = prev.astype(np.intp), nxt.astype(np.intp)
    return prev_i, next_i, virtual - prev_i


def sorted_quantile(a: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``numpy.quantile(a, q)`` of a sorted, finite, non-empty 1-d ``a`` (``q`` 1-d).

    Parameters
    ----------
    a : ndarray of float64
        Sorted non-decreasing.
    q : ndarray of float
        Probabilities in [0, 1].

    Returns
    -------
    ndarray
        The quantiles, bit for bit as ``numpy.quantile``.
    """
    prev_i, next_i, gamma = _indexes(a.size, np.atleast_1d(q))
    return _lerp(a[prev_i], a[next_i], gamma)


def median_and_quantile(err: np.ndarray, q: float) -> tuple[float, float]:
    """``numpy.median(err)`` and ``numpy.quantile(err, q)`` from one partition of ``err``.

    ``err`` (finite, 1-d, non-empty) is partitioned in place: compute anything that depends
    on its order first. From ``SELECT_ROWS`` values on (with numba) ``err`` is left in
    place and its order statistics are selected by bucket counts (the same values; a
    ``-0.0`` and a ``0.0`` count as distinct there, which the suite's absolute errors never
    hold).

    Parameters
    ----------
    err : ndarray of float64
        Values; reordered by the call.
    q : float
        Probability of the second result.

    Returns
    -------
    tuple of float
        The median and the ``q`` quantile.
    """
    n = err.size
    prev_i, next_i, gamma = _indexes(n, np.array([q]))
    half = n // 2
    mid = [half - 1, half] if n % 2 == 0 else [half]
    ranks = np.unique(np.concatenate((mid, prev_i % n, next_i % n)))
    if HAVE_NUMBA and n >= SELECT_ROWS:  # the same order statistics, compiled
        at = dict(zip(ranks.tolist(), select_ranks(err, ranks).tolist()))
        median = float(np.mean(np.array([at[i] for i in mid])))
        lower, upper = np.array([at[int(prev_i[0] % n)]]), np.array([at[int(next_i[0] % n)]])
        return median, float(_lerp(lower, upper, gamma)[0])
    err.partition(ranks)
    median = float(np.mean(err[mid[0]: mid[-1] + 1]))
    return median, float(_lerp(err[prev_i], err[next_i], gamma)[0])
