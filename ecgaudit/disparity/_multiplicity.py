"""Multiple-comparison adjustment over the whole family of tests of a run."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["adjust_pvalues", "benjamini_hochberg", "holm"]


def holm(p: np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (family-wise error rate).

    Parameters
    ----------
    p : ndarray of float
        Finite raw p-values.

    Returns
    -------
    ndarray
        Adjusted p-values in the input order.
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p-values (false discovery rate).

    Parameters
    ----------
    p : ndarray of float
        Finite raw p-values.

    Returns
    -------
    ndarray
        Adjusted p-values in the input order.
    """
    p = np.asarray(p, dtype=float)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def adjust_pvalues(table: pd.DataFrame) -> pd.DataFrame:
    """Fill ``p_holm`` and ``p_bh`` over every finite ``p_value`` of the table.

    Parameters
    ----------
    table : pandas.DataFrame
        Disparity rows with a ``p_value`` column (NaN where no test applies).

    Returns
    -------
    pandas.DataFrame
        A copy with ``p_holm`` and ``p_bh`` (NaN where ``p_value`` is NaN).
    """
    out = table.copy()
    p = out["p_value"].to_numpy(dtype=float)
    mask = np.isfinite(p)
    holm_p = np.full(p.size, np.nan)
    bh_p = np.full(p.size, np.nan)
    holm_p[mask] = holm(p[mask])
    bh_p[mask] = benjamini_hochberg(p[mask])
    out["p_holm"] = holm_p
    out["p_bh"] = bh_p
    return out
