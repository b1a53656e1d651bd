"""Paired-bootstrap replicate sums: units drawn with replacement, per-unit sums accumulated.

Replicate ``r`` of a group with ``k`` units draws slot ``j = 0 .. k-1`` the unit
``min(floor(u k), k - 1)`` with ``u`` the counter-based uniform of :mod:`ecgaudit.metrics._hashrng`
(key ``keys[r]``, slot ``j``), exactly as the audit's :func:`ecgaudit.metrics._drawkernels.pick`
does; the replicate's sums are the drawn units' per-unit sums added up (``counts @ sums``),
without a dense replicates x units weight matrix. The compiled kernel runs replicates in
parallel threads; each replicate is summed by one thread in unit order, so the result does not
depend on the thread count. The numpy path (no numba) makes the same draws; its float sums
agree to rounding (integer columns exactly).
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics import _kernels
from ecgaudit.metrics._drawkernels import pick
from ecgaudit.metrics._hashrng import uniforms
from ecgaudit.metrics._kernels import _pjit, prange

__all__ = ["replicate_sums"]


@_pjit
def _replicate_sums_kernel(keys, sums, out):  # pragma: no cover - compiled
    # out[r, :] = sum over slots j of sums[pick(keys[r], j, k), :]
    k = sums.shape[0]
    c = sums.shape[1]
    for r in prange(keys.size):
        cnt = np.zeros(k, dtype=np.int64)
        key = keys[r]
        for j in range(k):
            cnt[pick(key, j, k)] += 1
        acc = np.zeros(c)
        for u in range(k):
            w = cnt[u]
            if w != 0:
                for q in range(c):
                    acc[q] += w * sums[u, q]
        for q in range(c):
            out[r, q] = acc[q]


def _replicate_sums_numpy(keys: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """Make the same draws and sums in numpy (one replicate at a time)."""
    k = sums.shape[0]
    out = np.empty((keys.size, sums.shape[1]))
    for r, key in enumerate(keys):
        drawn = np.minimum((uniforms(key, k) * k).astype(np.int64), k - 1)
        out[r] = np.bincount(drawn, minlength=k).astype(float) @ sums
    return out


def replicate_sums(keys: np.ndarray, sums: np.ndarray, *, compiled: bool | None = None
                   ) -> np.ndarray:
    """Return the summed per-unit statistics of every bootstrap replicate.

    Parameters
    ----------
    keys : ndarray of uint64
        One counter-based key per replicate (:func:`ecgaudit.metrics._hashrng.replicate_keys`).
    sums : ndarray of float, shape (k, c)
        Per-unit sums of the group's ``k`` resampling units.
    compiled : bool, optional
        Use the numba kernel (default: when numba is installed).

    Returns
    -------
    ndarray of float, shape (len(keys), c)
        Row ``r``: the sums of the ``k`` units drawn with replacement by key ``keys[r]``.
    """
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    sums = np.ascontiguousarray(sums, dtype=np.float64)
    use = _kernels.HAVE_NUMBA if compiled is None else (compiled and _kernels.HAVE_NUMBA)
    if not use or sums.shape[0] == 0:
        return _replicate_sums_numpy(keys, sums)
    out = np.empty((keys.size, sums.shape[1]))
    _replicate_sums_kernel(keys, sums, out)
    return out
