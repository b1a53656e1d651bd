"""Weighted Kaplan-Meier, censoring Kaplan-Meier and Aalen-Johansen estimators.

Every estimator takes frequency weights (bootstrap replicate counts; ones for the point
estimate) so that a replicate is the same computation on the same rows. Rows come in a
:class:`SurvivalRows` sorted by time once; a replicate only changes the weights.

Conventions (those of scikit-survival, so the reference tests compare like with like):

* survival and censoring curves are right-continuous step functions: ``S(t)`` includes
  the events at ``t``;
* the censoring survival ``G`` is the "reverse" Kaplan-Meier estimator in which, at a tied
  time, events (of any cause) happen before censorings: at time ``u`` the at-risk set for
  censoring is ``n(u) - d(u)`` and the censoring "events" are the censorings at ``u``;
* event code 1 is the event of interest, 0 censoring, 2 a competing event (when the task
  declares one). Competing events end follow-up like events: they are not censorings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SurvivalRows", "aalen_johansen", "censoring_km", "kaplan_meier", "step_at"]

EVENT, CENSORED, COMPETING = 1, 0, 2


@dataclass(frozen=True)
class SurvivalRows:
    """One group's rows sorted by time, with the unique-time blocks precomputed.

    Attributes
    ----------
    time : ndarray of float
        Follow-up times, ascending.
    event : ndarray of int8
        Event codes (1 event, 0 censored, 2 competing), aligned with ``time``.
    index : ndarray of int
        Position of each sorted row in the original (unsorted) arrays.
    uniq : ndarray of float
        Unique times, ascending.
    start : ndarray of int
        First sorted row of each unique time (for ``np.add.reduceat``).
    """

    time: np.ndarray
    event: np.ndarray
    index: np.ndarray
    uniq: np.ndarray
    start: np.ndarray

    @classmethod
    def build(cls, time: np.ndarray, event: np.ndarray) -> SurvivalRows:
        """Sort ``time``/``event`` once (stable) and find the unique-time blocks."""
        order = np.argsort(time, kind="stable")
        t = np.asarray(time, dtype=np.float64)[order]
        uniq, start = np.unique(t, return_index=True)
        return cls(t, np.asarray(event, dtype=np.int8)[order], order, uniq, start)

    def block_sums(self, values: np.ndarray) -> np.ndarray:
        """Sum sorted-row ``values`` within each unique time."""
        if values.size == 0:
            return np.zeros(0)
        return np.add.reduceat(values, self.start)


def _counts(rows: SurvivalRows, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Weighted at-risk, events (code 1), competing events (code 2), censorings per time."""
    total = rows.block_sums(w)
    d1 = rows.block_sums(w * (rows.event == EVENT))
    d2 = rows.block_sums(w * (rows.event == COMPETING))
    at_risk = total[::-1].cumsum()[::-1]
    return at_risk, d1, d2, total - d1 - d2


def _product_limit(d: np.ndarray, n: np.ndarray) -> np.ndarray:
    ratio = np.divide(d, n, out=np.zeros_like(d, dtype=float), where=n > 0)
    return np.cumprod(1.0 - ratio)


def kaplan_meier(rows: SurvivalRows, w: np.ndarray) -> np.ndarray:
    """All-cause event-free survival ``S(u)`` at each unique time (competing events count).

    Parameters
    ----------
    rows : SurvivalRows
        Sorted rows.
    w : ndarray of float
        Weight of every sorted row.

    Returns
    -------
    ndarray
        ``S`` at ``rows.uniq`` (right-continuous).
    """
    n, d1, d2, _ = _counts(rows, w)
    return _product_limit(d1 + d2, n)


def censoring_km(rows: SurvivalRows, w: np.ndarray) -> np.ndarray:
    """Censoring survival ``G(u) = P(C > u)`` at each unique time (events before censorings).

    Parameters
    ----------
    rows : SurvivalRows
        Sorted rows.
    w : ndarray of float
        Weight of every sorted row.

    Returns
    -------
    ndarray
        ``G`` at ``rows.uniq`` (right-continuous).
    """
    n, d1, d2, c = _counts(rows, w)
    return _product_limit(c, n - d1 - d2)


def aalen_johansen(rows: SurvivalRows, w: np.ndarray) -> np.ndarray:
    """Cumulative incidence of the event of interest at each unique time.

    Without competing events this equals ``1 - kaplan_meier``.

    Parameters
    ----------
    rows : SurvivalRows
        Sorted rows.
    w : ndarray of float
        Weight of every sorted row.

    Returns
    -------
    ndarray
        ``F_1`` at ``rows.uniq`` (right-continuous).
    """
    n, d1, d2, _ = _counts(rows, w)
    s = _product_limit(d1 + d2, n)
    s_before = np.concatenate([[1.0], s[:-1]])
    hazard = np.divide(d1, n, out=np.zeros_like(d1, dtype=float), where=n > 0)
    return np.cumsum(s_before * hazard)


def step_at(uniq: np.ndarray, values: np.ndarray, t: np.ndarray | float,
            before: float = 1.0) -> np.ndarray:
    """Evaluate a right-continuous step function at ``t`` (``before`` left of ``uniq[0]``).

    Parameters
    ----------
    uniq : ndarray
        Jump times, ascending.
    values : ndarray
        Function value from each jump time on.
    t : float or ndarray
        Evaluation times.
    before : float
        Value before the first jump time.

    Returns
    -------
    ndarray
    """
    pos = np.searchsorted(uniq, np.asarray(t, dtype=float), side="right") - 1
    out = np.where(pos >= 0, values[np.maximum(pos, 0)] if values.size else before, before)
    return np.asarray(out, dtype=float)
