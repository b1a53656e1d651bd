"""Disparities: each group against its attribute's reference group."""

from ecgaudit.disparity._compare import compare_groups, compare_many
from ecgaudit.disparity._multiplicity import adjust_pvalues, benjamini_hochberg, holm

__all__ = ["adjust_pvalues", "benjamini_hochberg", "compare_groups", "compare_many", "holm"]
