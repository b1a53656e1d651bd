"""Row hashes of an in-memory table in one compiled pass per numeric column.

``frame_row_hashes(frame)`` equals ``pandas.util.hash_pandas_object(frame, index=False)``
(the audit's input digest of a DataFrame). pandas hashes a numeric column in about ten
numpy passes (widen to 64 bits, canonical NaN and -0.0 for floats, the splitmix64-style
bit mix) and then folds the column hashes together as CPython hashes a tuple, in three
more passes per column. Here a numeric numpy column (bool, integers, floats) is widened,
canonicalised, mixed and folded into the row hashes in one compiled pass, with the same
64-bit arithmetic; every other column (text, categorical, object, extension types) is
hashed by pandas itself and folded in the same order. ``tests/test_framehash.py`` checks
equality with pandas on mixed tables. Without numba, pandas does all of it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgaudit.metrics._compile import HAVE_NUMBA, _ijit, _jit

__all__ = ["frame_row_hashes"]

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_ZERO = np.uint64(0)


@_ijit
def _mix(v: np.uint64) -> np.uint64:
    """Mix one 64-bit value as pandas does (splitmix64's finaliser)."""
    v ^= v >> _S30
    v *= _MIX1
    v ^= v >> _S27
    v *= _MIX2
    v ^= v >> _S31
    return v


@_jit
def _fold_uint(out: np.ndarray, u: np.ndarray, mult: np.uint64) -> None:
    """Mix unsigned integers (any width, zero-extended) and fold them into ``out``."""
    for i in range(out.size):
        out[i] = (out[i] ^ _mix(np.uint64(u[i]))) * mult


@_jit
def _fold_float(out: np.ndarray, f: np.ndarray, bits: np.ndarray, nan_bits: np.uint64,
                neg_zero: np.uint64, mult: np.uint64) -> None:
    """Fold floats likewise: every NaN as ``nan_bits``, -0.0 as 0 (as pandas)."""
    for i in range(out.size):
        v = nan_bits if f[i] != f[i] else np.uint64(bits[i])
        if v == neg_zero:
            v = _ZERO
        out[i] = (out[i] ^ _mix(v)) * mult


def _fold(out: np.ndarray, column: pd.Series, mult: np.uint64) -> None:
    """Fold one column's value hashes into the row hashes ``out`` (in place)."""
    dtype = column.dtype
    if HAVE_NUMBA and isinstance(dtype, np.dtype) and dtype.kind in "biuf" and (
            dtype.itemsize <= 8):
        values = np.ascontiguousarray(column.to_numpy())
        unsigned = np.dtype(f"u{dtype.itemsize}")
        if dtype.kind == "f":
            _fold_float(out, values, values.view(unsigned),
                        np.uint64(np.array(np.nan, dtype=dtype).view(unsigned)),
                        np.uint64(np.array(-0.0, dtype=dtype).view(unsigned)), mult)
        else:
            _fold_uint(out, values.view(unsigned) if dtype.kind != "b" else
                       values.view(np.uint8), mult)
        return
    out ^= pd.util.hash_pandas_object(column, index=False).to_numpy()
    out *= mult


def frame_row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """Return ``hash_pandas_object(frame, index=False)`` as a uint64 array.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.

    Returns
    -------
    ndarray of uint64
        One hash per row (the values only, not the index).
    """
    n_cols = frame.shape[1]
    if n_cols == 0:  # each row hashes as an empty tuple
        return np.full(len(frame), 0x345678 + 97531, dtype=np.uint64)
    if not HAVE_NUMBA:  # pragma: no cover
        return pd.util.hash_pandas_object(frame, index=False).to_numpy()
    mult = np.uint64(1000003)
    out = np.full(len(frame), 0x345678, dtype=np.uint64)
    for i in range(n_cols):
        _fold(out, frame.iloc[:, i], mult)
        inverse_i = n_cols - i
        mult += np.uint64(82520 + inverse_i + inverse_i)
    out += np.uint64(97531)
    return out
