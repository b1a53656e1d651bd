"""Small-cell suppression applied to every exported table."""

from ecgaudit.privacy._suppress import (
    REASON_SUPPRESSED,
    suppress_cohort,
    suppress_disparities,
    suppress_metrics,
)

__all__ = ["REASON_SUPPRESSED", "suppress_cohort", "suppress_disparities", "suppress_metrics"]
