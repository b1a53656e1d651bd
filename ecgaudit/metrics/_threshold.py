"""Derive an operating threshold by a declared rule (then frozen for every group)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ecgaudit.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from ecgaudit.config import ThresholdConfig

__all__ = ["derive_threshold", "threshold_from_spec"]


def threshold_from_spec(y: np.ndarray, p: np.ndarray, spec: ThresholdConfig,
                        frame: pd.DataFrame) -> tuple[float, str]:
    """Apply a task's threshold rule: fixed, or derived on all (or the configured) rows.

    The one threshold step of the audit and of the paired comparison.

    Parameters
    ----------
    y, p : ndarray
        Labels and scores of every row.
    spec : ThresholdConfig
        ``AuditConfig.threshold_for(task)``.
    frame : pandas.DataFrame
        The validated rows (for ``derive_on``'s column).

    Returns
    -------
    tuple of (float, str)
        The threshold and where it was derived (``"fixed"``, ``"all rows"`` or the subset).
    """
    if spec.rule == "fixed":
        return float(spec.value if spec.value is not None else 0.5), "fixed"
    mask = np.ones(len(frame), dtype=bool)
    derived_on = "all rows"
    if spec.derive_on is not None:
        wanted = {str(v) for v in spec.derive_on.values}
        mask = frame[spec.derive_on.column].astype(str).isin(wanted).to_numpy()
        derived_on = f"{spec.derive_on.column} in {sorted(wanted)} ({int(mask.sum())} rows)"
    return derive_threshold(y[mask], p[mask], spec.rule, spec.target), derived_on


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
