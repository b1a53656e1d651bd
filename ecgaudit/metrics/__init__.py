"""Metrics: point estimates with closed-form intervals (and, in ``_bootstrap``, resampling).

What each metric is (label, direction, needs, reference) is declared once in the metric
registry, :func:`registry` / :func:`get_metric` (:mod:`ecgaudit.registry`).
"""

from ecgaudit.metrics._binary import ConfusionCounts, auprc, auroc, brier, confusion_counts
from ecgaudit.metrics._bootstrap import BootstrapResult, TaskArrays, bootstrap_intervals
from ecgaudit.metrics._bootstrap import Grouping as BootGrouping
from ecgaudit.metrics._calibration import LogisticFit, ece, logistic_recalibration, oe_ratio
from ecgaudit.metrics._calsuite import calibration_suite, reliability_curve
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
from ecgaudit.metrics._massbins import calibration_bins
from ecgaudit.metrics._paired import (
    METHOD_DELONG,
    PAIRED_METRICS,
    normal_quantile,
    paired_confusion_rows,
    paired_group,
    paired_rng,
    unpaired_change_interval,
)
from ecgaudit.metrics._points import MetricSession, PointEstimates, group_point_estimates
from ecgaudit.metrics._power import (
    hanley_mcneil_variance,
    min_detectable_auroc_difference,
    min_detectable_rate_difference,
)
from ecgaudit.metrics._ranking import (
    RANKING_METRICS,
    bnsp_auc,
    bpsn_auc,
    ranking_intervals,
    xauc,
)
from ecgaudit.metrics._table import GroupStats, MetricValue, group_stats
from ecgaudit.metrics._threshold import derive_threshold, threshold_from_spec
from ecgaudit.registry import MetricSpec, get_metric, registry

__all__ = [
    "METHOD_DELONG",
    "PAIRED_METRICS",
    "RANKING_METRICS",
    "BootGrouping",
    "BootstrapResult",
    "ConfusionCounts",
    "GroupStats",
    "LogisticFit",
    "MetricSession",
    "MetricSpec",
    "MetricValue",
    "PointEstimates",
    "TaskArrays",
    "auprc",
    "auroc",
    "bnsp_auc",
    "bootstrap_intervals",
    "bpsn_auc",
    "brier",
    "calibration_bins",
    "calibration_suite",
    "confusion_counts",
    "delong_auc_variance",
    "delong_ci",
    "delong_paired",
    "delong_unpaired",
    "derive_threshold",
    "ece",
    "get_metric",
    "group_point_estimates",
    "group_stats",
    "hanley_mcneil_variance",
    "katz_ratio_ci",
    "logistic_recalibration",
    "min_detectable_auroc_difference",
    "min_detectable_rate_difference",
    "newcombe_diff_ci",
    "normal_quantile",
    "oe_ratio",
    "paired_confusion_rows",
    "paired_group",
    "paired_rng",
    "ranking_intervals",
    "registry",
    "reliability_curve",
    "threshold_from_spec",
    "two_proportion_test",
    "unpaired_change_interval",
    "wilson_ci",
    "xauc",
]
