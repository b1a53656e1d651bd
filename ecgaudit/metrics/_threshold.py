"""Derive an operating threshold by a declared rule (then frozen for every group)."""

from __future__ import annotations

import numpy as np

from ecgaudit.errors import InputError

__all__ = ["derive_threshold"]


def derive_threshold(y: np.ndarray, p: np.ndarray, rule: str, target: float | None) -> float:
    """Choose the threshold (flag = ``p >= t``) that meets a rule on derivation rows.

    * ``sensitivity``: the highest threshold whose sensitivity is at least ``target``.
    * ``specificity``: the lowest threshold whose specificity is at least ``target``.
    * ``youden``: the threshold maximising sensitivity + specificity - 1 (highest on ties).

    Candidates are the distinct scores (and +inf, flagging nobody).

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels of the derivation rows.
    p : ndarray of float
        Scores of the derivation rows.
    rule : {"sensitivity", "specificity", "youden"}
        The rule.
    target : float, optional
        Required sensitivity or specificity.

    Returns
    -------
    float
        The threshold.

    Raises
    ------
    InputError
        If the derivation rows lack a class the rule needs.
    """
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise InputError(
            f"cannot derive a '{rule}' threshold: the derivation rows have {n_pos} positive "
            f"and {n_neg} negative cases; both are needed"
        )
    cand = np.r_[np.unique(p), np.inf]
    order = np.sort(p[y])
    neg = np.sort(p[~y])
    sens = 1.0 - np.searchsorted(order, cand, side="left") / n_pos
    spec = np.searchsorted(neg, cand, side="left") / n_neg
    if rule == "sensitivity":
        ok = np.flatnonzero(sens >= float(target or 0.0) - 1e-12)
        return float(cand[ok[-1]])
    if rule == "specificity":
        ok = np.flatnonzero(spec >= float(target or 0.0) - 1e-12)
        return float(cand[ok[0]])
    if rule == "youden":
        j = sens + spec - 1.0
        return float(cand[np.flatnonzero(j == j.max())[-1]])
    raise InputError(f"unknown threshold rule '{rule}'")
