"""Difference and ratio of every metric between a group and its reference.

* AUROC: difference with the unpaired DeLong z-test and Wald interval (groups of one
  attribute are disjoint); ratio with a delta-method interval on the log scale.
* Threshold rates: Newcombe difference interval, Katz ratio interval, pooled two-proportion
  z-test.
* Other metrics: point difference and ratio only here (the bootstrap adds intervals).
"""

from __future__ import annotations

import math
from typing import Any

from scipy.special import ndtri

from ecgaudit.metrics import (
    GroupStats,
    delong_unpaired,
    katz_ratio_ci,
    newcombe_diff_ci,
    two_proportion_test,
)
from ecgaudit.schema import METRICS, RATE_METRICS

__all__ = ["compare_groups"]

NAN = float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b != 0 else NAN


def _auroc_ratio_ci(a1: float, v1: float, a2: float, v2: float,
                    level: float) -> tuple[float, float]:
    if not all(math.isfinite(x) for x in (a1, v1, a2, v2)) or a1 <= 0 or a2 <= 0:
        return NAN, NAN
    se = math.sqrt(v1 / a1**2 + v2 / a2**2)
    z = float(ndtri(0.5 + level / 2.0))
    r = math.log(a1 / a2)
    return math.exp(r - z * se), math.exp(r + z * se)


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
    rows = []
    for metric in METRICS:
        g, r = group.values[metric], reference.values[metric]
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
            rows.append(row)
            continue
        row["difference"] = g.estimate - r.estimate
        row["ratio"] = _ratio(g.estimate, r.estimate)
        if metric == "auroc":
            _, lo, hi, pv = delong_unpaired(g.estimate, group.auc_var, r.estimate,
                                            reference.auc_var, level)
            rlo, rhi = _auroc_ratio_ci(g.estimate, group.auc_var, r.estimate,
                                       reference.auc_var, level)
            row.update(difference_ci_low=lo, difference_ci_high=hi, ratio_ci_low=rlo,
                       ratio_ci_high=rhi, ci_method="delong", test="delong-unpaired",
                       p_value=pv)
        elif metric in RATE_METRICS:
            k1, n1 = group.counts.rate(metric)
            k2, n2 = reference.counts.rate(metric)
            lo, hi = newcombe_diff_ci(k1, n1, k2, n2, level)
            rlo, rhi = katz_ratio_ci(k1, n1, k2, n2, level)
            row.update(difference_ci_low=lo, difference_ci_high=hi, ratio_ci_low=rlo,
                       ratio_ci_high=rhi, ci_method="newcombe/katz",
                       test="two-proportion-z", p_value=two_proportion_test(k1, n1, k2, n2))
        if "unstable" in (g.status, r.status):
            row.update(status="unstable", reason=g.reason or r.reason)
        rows.append(row)
    return rows
