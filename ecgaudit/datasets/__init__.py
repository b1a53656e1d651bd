"""Synthetic cohorts with known, planted disparities (clearly labelled as synthetic).

Public ECG data has no race or ethnicity, so tests, examples and benchmarks that need it
use :func:`make_synthetic_cohort`, whose true group AUROCs are known in closed form.
"""

from ecgaudit.datasets._potassium import make_synthetic_potassium, true_mae
from ecgaudit.datasets._synthetic import SyntheticCohort, binormal_auroc, make_synthetic_cohort

__all__ = [
    "SyntheticCohort", "binormal_auroc", "make_synthetic_cohort", "make_synthetic_potassium",
    "true_mae",
]
