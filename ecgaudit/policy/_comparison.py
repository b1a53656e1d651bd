"""The candidate-vs-baseline table that change rules are judged on (a data type only).

It is built in :mod:`ecgaudit.pipeline` (``compare_results`` / ``compare_predictions``) from
statistics in :mod:`ecgaudit.metrics`; the policy judges it and the reports render it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ecgaudit.result import to_jsonable

__all__ = ["COMPARISON_COLUMNS", "Comparison"]

COMPARISON_COLUMNS = (
    "task", "attribute", "group", "metric", "baseline", "candidate", "change",
    "change_ci_low", "change_ci_high", "ci_method", "n", "status", "reason",
)


@dataclass(frozen=True)
class Comparison:
    """Candidate-minus-baseline changes per task x attribute x group x metric.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns :data:`COMPARISON_COLUMNS`; ``change = candidate - baseline``.
    method : {"paired", "unpaired", "mixed"}
        How the rows' intervals were computed (see each row's ``ci_method``).
    notes : tuple of str
        Human-readable notes on the method.
    """

    table: pd.DataFrame
    method: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON data (NaN as None)."""
        cols = list(COMPARISON_COLUMNS)
        if "horizon" in self.table:  # survival comparisons (pipeline/_survcompare.py)
            cols.insert(cols.index("metric") + 1, "horizon")
        rows = [dict(zip(cols, r)) for r in self.table.loc[:, cols].itertuples(index=False)]
        return to_jsonable({"method": self.method, "notes": list(self.notes), "rows": rows})
