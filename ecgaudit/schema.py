"""The tidy result-table contract shared by audit, gate, report and compare.

One row per task x attribute x group x metric. These names are part of the public file
format (``metrics.csv``, ``disparities.csv``, ``results.json``); changing them is a schema
version bump. The metric-name lists are derived from the metric registry
(:mod:`ecgaudit.registry`), where each metric is declared once.
"""

from __future__ import annotations

from typing import Final

from ecgaudit.registry import REGISTRY, metric_names

__all__ = [
    "BOUNDED_METRICS",
    "CONTINUOUS_METRICS",
    "DISPARITY_COLUMNS",
    "INTERSECTION_SEP",
    "METRICS",
    "METRIC_COLUMNS",
    "OVERALL_ATTRIBUTE",
    "OVERALL_GROUP",
    "RANKING_METRICS",
    "RATE_METRICS",
    "RULE_METRICS",
    "SCHEMA_VERSION",
    "STATUSES",
    "SURVIVAL_METRICS",
    "UNKNOWN_GROUP",
]

SCHEMA_VERSION: Final = "1.1"

METRIC_COLUMNS: Final = (
    "task", "attribute", "group", "metric", "horizon", "estimate", "ci_low", "ci_high",
    "ci_method", "n", "n_pos", "status", "reason",
)

DISPARITY_COLUMNS: Final = (
    "task", "attribute", "group", "reference", "metric", "horizon",
    "difference", "difference_ci_low", "difference_ci_high",
    "ratio", "ratio_ci_low", "ratio_ci_high", "ci_method",
    "test", "p_value", "p_holm", "p_bh", "status", "reason",
)

#: Threshold-based rates: a proportion of a count, with a Wilson interval.
RATE_METRICS: Final = metric_names("binary", family="rate")

#: Every metric identifier, in report order.
METRICS: Final = metric_names("binary")

#: Metrics of continuous outcomes (``kind: continuous`` tasks; see docs/continuous.md).
CONTINUOUS_METRICS: Final = metric_names("continuous")

#: Survival-task metrics (``horizon`` column; see docs/survival.md).
SURVIVAL_METRICS: Final = metric_names("survival")

#: Every metric name a policy rule may name (binary, then the new survival and continuous names).
RULE_METRICS: Final = tuple(dict.fromkeys(
    s.name for o in ("binary", "survival", "continuous") for s in REGISTRY.select(o, rule=True)))

#: Ranking-fairness metrics per group (BPSN/BNSP subgroup AUCs, cross-group AUCs).
RANKING_METRICS: Final = metric_names("binary", table="ranking")

#: Metrics whose value lies in [0, 1].
BOUNDED_METRICS: Final = frozenset(s.name for s in REGISTRY.select() if s.bounded)

#: ``ok``: estimate reported. ``unstable``: reported but based on few events.
#: ``insufficient``: undefined for this group (e.g. no positives), no number.
#: ``suppressed``: withheld because the cell is small (privacy), no number.
STATUSES: Final = ("ok", "unstable", "insufficient", "suppressed")

OVERALL_ATTRIBUTE: Final = "overall"
OVERALL_GROUP: Final = "all"
UNKNOWN_GROUP: Final = "Unknown"
INTERSECTION_SEP: Final = " & "
