"""Cells of a summary from arrays, and the Poisson bootstrap weights hashed from unit ids.

Replicate weights (scheme ``poisson-hash-1``): unit ``u`` (a patient id, as text) gets in
replicate ``k`` of seed ``s`` the weight ``F^-1(v)`` of the Poisson(1) distribution at

``v = (splitmix64(key(s, k) + splitmix64(h(u))) >> 11) * 2**-53``,

where ``h(u)`` is the 8-byte BLAKE2b digest of the UTF-8 id read as a little-endian
integer, ``key(s, k)`` the replicate key of :mod:`ecgaudit.metrics._hashrng` and the sums are
modulo 2**64. A weight depends only on (id, replicate, seed): every ECG of a patient gets the
same weight wherever it is stored, so per-site weighted cells add up to the pooled
patient-clustered Poisson bootstrap exactly, however the rows are partitioned.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ecgaudit.metrics._hashrng import replicate_keys
from ecgaudit.summary._layout import attribute_column, bin_index, replicate_column

__all__ = ["POISSON_CDF", "cell_dtypes", "cell_table", "poisson_weights"]

#: ``P(X <= k)`` of Poisson(1), ``k = 0..29`` (the last is 1 to double precision).
POISSON_CDF = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(30)])


def _splitmix(z: np.ndarray) -> np.ndarray:
    # SplitMix64 finaliser, elementwise (as :func:`ecgaudit.metrics._hashrng.splitmix64`).
    with np.errstate(over="ignore"):
        z = z ^ (z >> np.uint64(30))
        z = z * np.uint64(0xBF58476D1CE4E5B9)
        z = z ^ (z >> np.uint64(27))
        z = z * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _unit_hash(ids: Sequence[str]) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(str(u).encode(), digest_size=8).digest(),
                                    "little") for u in ids], dtype=np.uint64)


def poisson_weights(ids: np.ndarray, replicates: int, seed: int) -> np.ndarray:
    """Poisson(1) bootstrap weights of every row, from its unit id (scheme ``poisson-hash-1``).

    Parameters
    ----------
    ids : ndarray
        Unit (patient) id of every row, compared as text.
    replicates : int
        Number of replicates ``B``.
    seed : int
        The shared seed.

    Returns
    -------
    ndarray of int32, shape (n_rows, B)
    """
    text = pd.Series(np.asarray(ids)).astype(str).to_numpy()
    uniq, inv = np.unique(text, return_inverse=True)
    h = _splitmix(_unit_hash(uniq))
    keys = replicate_keys(seed, range(int(replicates)))
    with np.errstate(over="ignore"):
        z = _splitmix(keys[None, :] + h[:, None])
    v = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    w = np.searchsorted(POISSON_CDF, v, side="right").astype(np.int32)
    return w[inv.reshape(-1)]


def cell_table(tasks: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
               groups: Mapping[str, np.ndarray],
               weights: np.ndarray | None = None) -> pd.DataFrame:
    """Count some rows into the cell table (layout of :mod:`ecgaudit.summary._layout`).

    Parameters
    ----------
    tasks : sequence of (name, y, p, edges)
        Per task: labels (0/1), scores and the grid's edges.
    groups : mapping of str to ndarray of str
        Per attribute, in order: every row's group name.
    weights : ndarray of int, shape (n_rows, B), optional
        Bootstrap weights of every row (``r:<k>`` columns).

    Returns
    -------
    pandas.DataFrame
        One row per non-empty (task, stratum, bin, label) cell, sorted.
    """
    attr_cols = [attribute_column(a) for a in groups]
    parts = []
    for name, y, p, edges in tasks:
        p = np.asarray(p, dtype=np.float64)
        frame = {c: np.asarray(v, dtype=object) for c, v in zip(attr_cols, groups.values())}
        frame.update(bin=bin_index(p, edges), label=np.asarray(y, dtype=np.int8),
                     n=np.ones(p.size, dtype=np.int64), sum_p=p)
        if weights is not None:
            frame.update({replicate_column(k): weights[:, k].astype(np.int64)
                          for k in range(weights.shape[1])})
        df = pd.DataFrame(frame)
        keys = [*attr_cols, "bin", "label"]
        out = df.groupby(keys, sort=True, dropna=False).sum().reset_index()
        parts.append(pd.concat([pd.DataFrame({"task": [name] * len(out)}), out], axis=1))
    return cell_dtypes(pd.concat(parts, ignore_index=True), attr_cols)


def cell_dtypes(cells: pd.DataFrame, attr_cols: Sequence[str]) -> pd.DataFrame:
    """Return a copy of ``cells`` with the summary layout's dtypes.

    Parameters
    ----------
    cells : pandas.DataFrame
        Cells with ``bin``, ``label``, ``n``, optional ``r:<k>`` and the attribute columns.
    attr_cols : sequence of str
        The attribute columns (stored as text).

    Returns
    -------
    pandas.DataFrame
        ``bin`` int32, ``label`` int8, ``n`` int64, replicate columns int32, attributes str.
    """
    cells = cells.copy()
    cells["bin"] = cells["bin"].astype(np.int32)
    cells["label"] = cells["label"].astype(np.int8)
    cells["n"] = cells["n"].astype(np.int64)
    for c in cells.columns:
        if c.startswith("r:"):
            cells[c] = cells[c].astype(np.int32)
    for c in attr_cols:
        cells[c] = cells[c].astype(str)
    return cells
