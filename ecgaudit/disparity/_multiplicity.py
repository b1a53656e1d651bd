"""Multiple-comparison adjustment over a stable family of distinct hypotheses.

The family (``multiplicity: {family: ...}`` in the audit config) is every disparity
comparison with a defined difference (not suppressed, not insufficient) in the run
(``run``, the default), in each task (``task``), in each attribute across tasks
(``attribute``) or in each task and attribute (``task_attribute``). It depends on the data
and the config only, never on whether the bootstrap is on:

* **Distinct hypotheses.** ``FNR = 1 - sensitivity`` and ``FPR = 1 - specificity``: their
  difference rows test the same hypothesis, get the same p-value and are counted once
  (both rows show the same adjusted p-values).
* **Untested members** (a defined difference without a test, e.g. calibration slope with
  ``bootstrap: 0``, or a bootstrap withheld for too many degenerate replicates) count as
  ``p = 1``: the family size stays the same, and Holm/BH stay valid (a test that never
  rejects does not inflate the error rate). Their adjusted p-values are ``nan``.

Holm (1979) controls the family-wise error rate (the chance of any false rejection) under
any dependence; Benjamini-Hochberg (1995) controls the false discovery rate (the expected
share of false rejections among rejections) under independence or positive regression
dependence, which disparities sharing a reference group satisfy approximately.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FAMILIES", "SAME_HYPOTHESIS", "adjust_pvalues", "benjamini_hochberg", "holm"]


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


#: Families accepted by ``multiplicity.family``.
FAMILIES = ("run", "task", "attribute", "task_attribute")
#: Rows that test the same hypothesis as another metric's row.
SAME_HYPOTHESIS = {"fnr": "sensitivity", "fpr": "specificity"}
_FAMILY_KEYS = {"run": [], "task": ["task"], "attribute": ["attribute"],
                "task_attribute": ["task", "attribute"]}


def adjust_pvalues(table: pd.DataFrame, family: str = "run") -> pd.DataFrame:
    """Fill ``p_holm`` and ``p_bh`` over the distinct hypotheses of each family.

    Parameters
    ----------
    table : pandas.DataFrame
        Disparity rows with ``task, attribute, group, reference, metric, difference,
        p_value`` (NaN where no test applies).
    family : {"run", "task", "attribute", "task_attribute"}
        How hypotheses are grouped into families (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        A copy with ``p_holm`` and ``p_bh`` (NaN where ``p_value`` is NaN).
    """
    if family not in FAMILIES:
        raise ValueError(f"multiplicity family must be one of {list(FAMILIES)}, got {family!r}")
    out = table.copy()
    out["p_holm"] = np.nan
    out["p_bh"] = np.nan
    if out.empty:
        return out
    canon = out["metric"].map(lambda m: SAME_HYPOTHESIS.get(m, m))
    member = np.isfinite(out["difference"].to_numpy(dtype=float))
    frame = out.assign(_h=canon, _p=out["p_value"].astype(float), _row=np.arange(len(out)))
    frame = frame.loc[member]
    hyp_cols = ["task", "attribute", "group", "reference", "_h"]
    # One p per hypothesis: a tested row first, the canonical metric (sensitivity) before
    # its mirror (FNR).
    frame = frame.assign(_first=(frame["metric"] != frame["_h"]).astype(int),
                         _untested=frame["_p"].isna().astype(int))
    frame = frame.sort_values([*hyp_cols, "_untested", "_first"], kind="stable")
    hyp = frame.drop_duplicates(hyp_cols, keep="first")[[*hyp_cols, "_p"]]
    hyp = hyp.reset_index(drop=True)
    keys = _FAMILY_KEYS[family]
    adj_holm = np.full(len(hyp), np.nan)
    adj_bh = np.full(len(hyp), np.nan)
    groups = [np.arange(len(hyp))] if not keys else [
        np.asarray(ix) for ix in hyp.groupby(keys, sort=False).indices.values()]
    for ix in groups:
        p = hyp["_p"].to_numpy()[ix]
        tested = np.isfinite(p)
        filled = np.where(tested, p, 1.0)
        adj_holm[ix] = np.where(tested, holm(filled), np.nan)
        adj_bh[ix] = np.where(tested, benjamini_hochberg(filled), np.nan)
    hyp["p_holm"], hyp["p_bh"] = adj_holm, adj_bh
    merged = frame[[*hyp_cols, "_row", "_p"]].merge(hyp[[*hyp_cols, "p_holm", "p_bh"]],
                                                    on=hyp_cols, how="left")
    rows = merged["_row"].to_numpy()
    has_p = np.isfinite(merged["_p"].to_numpy())
    out.iloc[rows[has_p], out.columns.get_loc("p_holm")] = merged["p_holm"].to_numpy()[has_p]
    out.iloc[rows[has_p], out.columns.get_loc("p_bh")] = merged["p_bh"].to_numpy()[has_p]
    return out
