"""Engine options shared by ``summarize`` and ``audit``: ``--sql``, ``--connection``, datasets.

The rows stay in their engine (:func:`ecgaudit.pipeline._warehouse.summarize_where`):
``summarize`` writes the summary the engine computed; ``audit --sql ... --connection ...``
audits it at once (:func:`ecgaudit.pipeline.run_audit` with
:class:`ecgaudit.pipeline.RowsElsewhere`). Dataset paths (Parquet/CSV, globs) are read by
the embedded DuckDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["ConnectionOption", "SqlOption", "is_dataset"]

SqlOption = Annotated[str | None, typer.Option(
    "--sql", help="SELECT query giving the rows (run on --connection; the rows stay there).")]
ConnectionOption = Annotated[str | None, typer.Option(
    "--connection", help="Engine URL for --sql: duckdb://[file], "
    "postgresql://user:password@host:port/db, spark:local[2].")]


def is_dataset(paths: Sequence[Path]) -> bool:
    """Whether ``paths`` name a dataset for the embedded engine (several files or a glob)."""
    return len(paths) > 1 or any(ch in str(p) for p in paths for ch in "*?[")
