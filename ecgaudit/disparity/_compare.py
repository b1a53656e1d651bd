"""Difference and ratio of every metric between a group and its reference.

Closed forms (groups of one attribute are disjoint, so the two estimates are independent):

* **Threshold rates**: Newcombe's hybrid score interval for the difference (MOVER on the two
  Wilson intervals) and MOVER-R on the same intervals for the ratio.
* **AUROC**: MOVER on the two groups' score intervals (Newcombe 2006, method 5) for the
  difference, MOVER-R for the ratio.
* **O/E**: MOVER / MOVER-R on the exact Poisson intervals.
* **Test**: the p-value inverts the difference interval (``test = "<method>-inverted"``):
  ``p < alpha`` exactly when the ``1 - alpha`` interval excludes 0, so a row's interval and
  its test always agree. Sensitivity/FNR (and specificity/FPR) rows are mirror images and
  get the same p-value.
* Other metrics: point difference and ratio only here (the bootstrap adds intervals).

With a patient column each group's interval carries its design effect (see
:mod:`ecgaudit.metrics._cluster`) and the method names end in ``-clustered``. A ratio whose
reference value is 0 is undefined (``nan``; the difference is still given).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.special import ndtr

from ecgaudit.disparity._inversion import HAVE_NUMBA, auroc_bracket, oe_limits
from ecgaudit.metrics import GroupStats
from ecgaudit.metrics._smallsample import (
    auc_score_limits,
    inverted_p_value,
    mover_difference,
    mover_ratio,
    wilson_limits,
    z_of,
)
from ecgaudit.registry import REGISTRY
from ecgaudit.schema import METRICS

__all__ = ["CLOSED_FORM", "compare_groups", "compare_many"]

NAN = float("nan")
#: Closed-form disparity methods: metric family -> (ci_method, test).
CLOSED_FORM = {
    "rate": ("newcombe/mover-r", "newcombe-inverted"),
    "auroc": ("mover-score/mover-r", "mover-score-inverted"),
    "oe_ratio": ("mover-poisson/mover-r", "mover-poisson-inverted"),
}
#: Metric -> closed-form family: the metrics whose registered ``disparity_test`` is one of
#: :data:`CLOSED_FORM`'s tests (the others get bootstrap disparities only).
_FAMILIES = {s.name: family for s in REGISTRY.select("binary")
             for family, (_, test) in CLOSED_FORM.items() if s.disparity_test == test}
REASON_RATIO_ZERO = "ratio undefined: the reference value is 0 (the difference is given)"


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b != 0 else NAN


def _family(metric: str) -> str | None:
    return _FAMILIES.get(metric)


def _inputs(s: GroupStats, metric: str) -> tuple[float, float, float]:
    """Return the numbers a group's closed-form interval needs (``k, n`` or analogues)."""
    if metric == "auroc":
        return s.values["auroc"].estimate, float(s.n_pos), float(s.n - s.n_pos)
    if metric == "oe_ratio":
        return float(s.n_pos), float(s.expected), NAN
    k, d = s.counts.rate(metric)
    return float(k), float(d), NAN


Side = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _limits_fn(family: str, a: np.ndarray, deff: np.ndarray) -> Side:
    """``f(z) -> (estimate, low, high)`` of one side's intervals, vectorised."""
    x, y = a[:, 0], a[:, 1]
    if family == "auroc":
        def auc(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            lo, hi = auc_score_limits(x, y, a[:, 2], z, deff)
            return x, lo, hi
        return auc
    if family == "oe_ratio":
        def oe(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            level = 2.0 * ndtr(z) - 1.0
            lo, hi = oe_limits(x, y, level, deff)  # poisson_ratio_limits' values
            with np.errstate(invalid="ignore", divide="ignore"):
                return x / y, lo, hi
        return oe

    def rate(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = wilson_limits(x, y, z, deff)
        with np.errstate(invalid="ignore", divide="ignore"):
            return x / y, lo, hi
    return rate


def _design_key(metric: str) -> str:
    return "prevalence" if metric == "oe_ratio" else metric


def _closed_forms(items: list[tuple[GroupStats, GroupStats, str]], family: str,
                  level: float) -> list[tuple[float, float, float, float, float]]:
    """Difference/ratio limits and inverted p of every ``(group, reference, metric)``."""
    g = np.array([_inputs(a, m) for a, _, m in items], dtype=np.float64)
    r = np.array([_inputs(b, m) for _, b, m in items], dtype=np.float64)
    dg = np.array([a.design.get(_design_key(m), 1.0) for a, _, m in items])
    dr = np.array([b.design.get(_design_key(m), 1.0) for _, b, m in items])
    fg, fr = _limits_fn(family, g, dg), _limits_fn(family, r, dr)

    def diff_limits(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e1, l1, u1 = fg(z)
        e2, l2, u2 = fr(z)
        return mover_difference(e1, l1, u1, e2, l2, u2)

    z = np.full(len(items), z_of(level))
    e1, l1, u1 = fg(z)
    e2, l2, u2 = fr(z)
    d_lo, d_hi = mover_difference(e1, l1, u1, e2, l2, u2)
    r_lo, r_hi = mover_ratio(e1, l1, u1, e2, l2, u2)
    search = None
    if family == "auroc" and HAVE_NUMBA:  # the same bisection, compiled (_inversion.py)
        def search(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return auroc_bracket(d, g, r, dg, dr)
    p = inverted_p_value(e1 - e2, diff_limits, level=level, search=search)
    return [tuple(float(v) for v in row) for row in zip(d_lo, d_hi, r_lo, r_hi, p)]


def compare_groups(
    group: GroupStats, reference: GroupStats, level: float = 0.95
) -> list[dict[str, Any]]:
    """Compare every metric of ``group`` with ``reference``.

    Parameters
    ----------
    group, reference : GroupStats
        Statistics of the compared group and of the reference group (disjoint rows).
    level : float
        Confidence level.

    Returns
    -------
    list of dict
        One dict per metric with keys ``metric, difference, difference_ci_low,
        difference_ci_high, ratio, ratio_ci_low, ratio_ci_high, ci_method, test, p_value,
        status, reason``.
    """
    return compare_many([(group, reference)], level)[0]


def compare_many(pairs: Sequence[tuple[GroupStats, GroupStats]], level: float = 0.95
                 ) -> list[list[dict[str, Any]]]:
    """:func:`compare_groups` for many (group, reference) pairs at once (vectorised).

    Parameters
    ----------
    pairs : sequence of (GroupStats, GroupStats)
        Group and reference statistics.
    level : float
        Confidence level.

    Returns
    -------
    list of list of dict
        The rows of every pair, in order.
    """
    out: list[list[dict[str, Any]]] = []
    todo: dict[str, list[tuple[dict[str, Any], GroupStats, GroupStats, str]]] = {}
    for group, reference in pairs:
        rows = []
        for metric in METRICS:
            row = _point_row(group, reference, metric)
            rows.append(row)
            family = _family(metric)
            if row["status"] != "insufficient" and family is not None:
                todo.setdefault(family, []).append((row, group, reference, metric))
        out.append(rows)
    for family, items in todo.items():
        limits = _closed_forms([(g, r, m) for _, g, r, m in items], family, level)
        method, test = CLOSED_FORM[family]
        for (row, g, r, _), (dl, dh, rl, rh, p) in zip(items, limits):
            suffix = "-clustered" if (g.design or r.design) else ""
            row.update(difference_ci_low=dl, difference_ci_high=dh, ci_method=method + suffix,
                       test=test + suffix, p_value=p)
            if math.isfinite(row["ratio"]):
                row.update(ratio_ci_low=rl, ratio_ci_high=rh)
            elif math.isfinite(row["difference"]):
                row["reason"] = "; ".join(x for x in (row["reason"], REASON_RATIO_ZERO) if x)
    return out


def _point_row(g_stats: GroupStats, r_stats: GroupStats, metric: str) -> dict[str, Any]:
    g, r = g_stats.values[metric], r_stats.values[metric]
    row: dict[str, Any] = {
        "metric": metric, "difference": NAN, "difference_ci_low": NAN,
        "difference_ci_high": NAN, "ratio": NAN, "ratio_ci_low": NAN,
        "ratio_ci_high": NAN, "ci_method": "none", "test": "none", "p_value": NAN,
        "status": "ok", "reason": "",
    }
    if g.status == "insufficient" or r.status == "insufficient":
        who = "group" if g.status == "insufficient" else "reference"
        why = (g if who == "group" else r).reason
        row.update(status="insufficient", reason=f"{who}: {why}")
        return row
    row["difference"] = g.estimate - r.estimate
    row["ratio"] = _ratio(g.estimate, r.estimate)
    if "unstable" in (g.status, r.status):
        row.update(status="unstable", reason=g.reason or r.reason)
    return row
