"""CSV files of the committee views (``curves_by_value.csv``, ``controlled_disparities.csv``).

Written next to ``metrics.csv`` by :meth:`ecgaudit.result.AuditResult.save` when the
result's extras hold the rows (see ``docs/views.md``); atomically, and with text cells that
a spreadsheet would run as a formula (leading ``= + - @``, tab or carriage return) prefixed
by a single quote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ecgaudit.io._atomic import atomic_write_text

__all__ = ["VIEW_TABLES", "write_view_tables"]

#: ``extras`` key -> CSV file name.
VIEW_TABLES = {"curves_by_value": "curves_by_value.csv",
               "controlled_disparities": "controlled_disparities.csv"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    frame = pd.DataFrame.from_records(list(rows), columns=columns)
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(_safe)
    return frame.to_csv(index=False, lineterminator="\n")


def write_view_tables(extras: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write the view tables present in ``extras``; return the paths by role."""
    paths = {}
    for key, name in VIEW_TABLES.items():
        rows = extras.get(key)
        if rows:
            paths[key] = out_dir / name
            atomic_write_text(paths[key], _csv(rows))
    return paths
