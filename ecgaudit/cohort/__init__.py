"""Cohort: attributes, age bands, intersections and reference groups."""

from ecgaudit.cohort._groups import Cohort, Grouping, age_band_labels, build_cohort

__all__ = ["Cohort", "Grouping", "age_band_labels", "build_cohort"]
