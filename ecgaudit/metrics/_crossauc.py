"""Cross-AUC between a set of positives and a set of negatives (weighted, vectorised).

Used by the ranking-fairness metrics (:mod:`ecgaudit.metrics._ranking`) and by the numpy
engine's ranking replicates (:mod:`ecgaudit.metrics._evaluate`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["cross_auc", "ranking_replicates"]


def cross_auc(pos: np.ndarray, neg: np.ndarray, w_pos: np.ndarray | None = None,
              w_neg: np.ndarray | None = None) -> np.ndarray | float:
    """``P(S+ > S-) + 1/2 P(S+ = S-)`` between scores ``pos`` and ``neg``.

    Parameters
    ----------
    pos, neg : ndarray
        Scores of the positives and of the negatives.
    w_pos, w_neg : ndarray, optional
        Integer weights, shape ``(R, len(pos))`` and ``(R, len(neg))``: one value per row
        ``R`` (bootstrap replicates) instead of a single float.

    Returns
    -------
    float or ndarray
        The cross-AUC (``nan`` when a side is empty or has zero total weight).
    """
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    single = w_pos is None
    wp = np.ones((1, pos.size)) if w_pos is None else np.asarray(w_pos, dtype=np.float64)
    wn = np.ones((1, neg.size)) if w_neg is None else np.asarray(w_neg, dtype=np.float64)
    order = np.argsort(neg, kind="stable")
    ns = neg[order]
    cum = np.zeros((wn.shape[0], ns.size + 1))
    np.cumsum(wn[:, order], axis=1, out=cum[:, 1:])
    lo = np.searchsorted(ns, pos, side="left")
    hi = np.searchsorted(ns, pos, side="right")
    num = np.sum(wp * (cum[:, lo] + 0.5 * (cum[:, hi] - cum[:, lo])), axis=1)
    den = wp.sum(axis=1) * cum[:, -1]
    out = np.full(den.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return float(out[0]) if single else out


def _pairs(y: np.ndarray, codes: np.ndarray, g: int, ref: int | None):
    """(metric, positive mask, negative mask) of the four ranking metrics of group g."""
    in_g = codes == g
    out = [("bpsn_auc", ~in_g & (y == 1), in_g & (y == 0)),
           ("bnsp_auc", in_g & (y == 1), ~in_g & (y == 0))]
    if ref is not None:
        in_r = codes == ref
        out += [("xauc_group_vs_ref", in_g & (y == 1), in_r & (y == 0)),
                ("xauc_ref_vs_group", in_r & (y == 1), in_g & (y == 0))]
    return out




def ranking_replicates(y: np.ndarray, p: np.ndarray, codes: np.ndarray, n_groups: int,
                       reference: int | None, w: np.ndarray) -> np.ndarray:
    """BPSN, BNSP and both xAUCs of every group for row weights ``w`` (R, n).

    Returns
    -------
    ndarray, shape (R, 4, n_groups)
        In :data:`ecgaudit.schema.RANKING_METRICS` order; the cross-group AUCs are ``nan``
        for the reference group and for groupings without one.
    """
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    out = np.full((w.shape[0], 4, n_groups), np.nan)
    for g in range(n_groups):
        ref = None if reference in (None, g) else reference
        for m, (_, pm, nm) in enumerate(_pairs(y, codes, g, ref)):
            out[:, m, g] = cross_auc(p[pm], p[nm], w[:, pm], w[:, nm])
    return out
