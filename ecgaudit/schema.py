"""The tidy result-table contract shared by audit, gate, report and compare.

One row per task x attribute x group x metric. These names are part of the public file
format (``metrics.csv``, ``disparities.csv``, ``results.json``); changing them is a schema
version bump.
"""

from __future__ import annotations

from typing import Final

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
RATE_METRICS: Final = ("sensitivity", "specificity", "ppv", "npv", "fnr", "fpr", "flag_rate")

#: Every metric identifier, in report order.
METRICS: Final = (
    "auroc", "auprc", "brier", "oe_ratio", "cal_intercept", "cal_slope", "ece",
    *RATE_METRICS,
)

#: Metrics of continuous outcomes (``kind: continuous`` tasks; see docs/continuous.md).
CONTINUOUS_METRICS: Final = (
    "bias", "mae", "rmse", "loa_lower", "loa_upper", "slope", "intercept", "r2",
    "within_tolerance",
)

#: Survival-task metrics (declared in ``ecgaudit.metrics._survtable``; ``horizon`` column).
SURVIVAL_METRICS: Final = (
    "harrell_c", "uno_c", "td_auroc", "brier", "ibs", "observed_risk", "predicted_risk",
    "oe_ratio", "cal_ici", "sensitivity", "specificity", "ppv",
)

#: Every metric name a policy rule may name (binary, then the new survival and continuous names).
RULE_METRICS: Final = (*METRICS, *(m for m in SURVIVAL_METRICS if m not in METRICS),
                       *CONTINUOUS_METRICS)

#: Ranking-fairness metrics per group (BPSN/BNSP subgroup AUCs, cross-group AUCs).
RANKING_METRICS: Final = ("bpsn_auc", "bnsp_auc", "xauc_group_vs_ref", "xauc_ref_vs_group")

#: Metrics whose value lies in [0, 1].
BOUNDED_METRICS: Final = frozenset({"auroc", "auprc", "brier", "ece", *RATE_METRICS,
                                     "harrell_c", "uno_c", "td_auroc", "ibs", "cal_ici",
                                     "observed_risk", "predicted_risk"})

#: ``ok``: estimate reported. ``unstable``: reported but based on few events.
#: ``insufficient``: undefined for this group (e.g. no positives), no number.
#: ``suppressed``: withheld because the cell is small (privacy), no number.
STATUSES: Final = ("ok", "unstable", "insufficient", "suppressed")

OVERALL_ATTRIBUTE: Final = "overall"
OVERALL_GROUP: Final = "all"
UNKNOWN_GROUP: Final = "Unknown"
INTERSECTION_SEP: Final = " & "
