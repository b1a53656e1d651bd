"""Small-cell suppression applied to every exported table (see docs/small-groups.md)."""

from ecgaudit.privacy._cells import (
    DEFAULT_MIN_CELL,
    is_small_cell,
    min_cell_size_of,
    too_small_to_draw,
)
from ecgaudit.privacy._plan import SuppressionPlan, plan_suppression
from ecgaudit.privacy._suppress import (
    REASON_COMPLEMENTARY,
    REASON_EVENTS,
    REASON_SUPPRESSED,
    suppress_cohort,
    suppress_disparities,
    suppress_extras,
    suppress_metrics,
)

__all__ = [
    "DEFAULT_MIN_CELL",
    "REASON_COMPLEMENTARY",
    "REASON_EVENTS",
    "REASON_SUPPRESSED",
    "SuppressionPlan",
    "is_small_cell",
    "min_cell_size_of",
    "plan_suppression",
    "suppress_cohort",
    "suppress_disparities",
    "suppress_extras",
    "suppress_metrics",
    "too_small_to_draw",
]
