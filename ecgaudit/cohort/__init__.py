"""Cohort: attributes, age bands, intersections and reference groups."""

from ecgaudit.cohort._groups import Cohort, Grouping, age_band_labels, build_cohort
from ecgaudit.cohort._narrow import narrow_codes

__all__ = ["Cohort", "Grouping", "age_band_labels", "build_cohort", "narrow_codes"]
