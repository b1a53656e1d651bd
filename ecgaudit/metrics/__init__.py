"""Metrics: point estimates with closed-form intervals (and, in ``_bootstrap``, resampling)."""

from ecgaudit.metrics._binary import ConfusionCounts, auprc, auroc, brier, confusion_counts
from ecgaudit.metrics._bootstrap import BootstrapResult, TaskArrays, bootstrap_intervals
from ecgaudit.metrics._bootstrap import Grouping as BootGrouping
from ecgaudit.metrics._calibration import LogisticFit, ece, logistic_recalibration, oe_ratio
from ecgaudit.metrics._delong import (
    delong_auc_variance,
    delong_ci,
    delong_paired,
    delong_unpaired,
)
from ecgaudit.metrics._intervals import (
    katz_ratio_ci,
    newcombe_diff_ci,
    two_proportion_test,
    wilson_ci,
)
from ecgaudit.metrics._table import GroupStats, MetricValue, group_stats
from ecgaudit.metrics._threshold import derive_threshold

__all__ = [
    "BootGrouping",
    "BootstrapResult",
    "ConfusionCounts",
    "GroupStats",
    "LogisticFit",
    "MetricValue",
    "TaskArrays",
    "auprc",
    "auroc",
    "bootstrap_intervals",
    "brier",
    "confusion_counts",
    "delong_auc_variance",
    "delong_ci",
    "delong_paired",
    "delong_unpaired",
    "derive_threshold",
    "ece",
    "group_stats",
    "katz_ratio_ci",
    "logistic_recalibration",
    "newcombe_diff_ci",
    "oe_ratio",
    "two_proportion_test",
    "wilson_ci",
]
