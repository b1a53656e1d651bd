"""Engine options shared by ``summarize`` and ``audit``: ``--sql``, ``--connection``, datasets.

The rows stay in their engine (:mod:`ecgaudit.pipeline._warehouse`): ``summarize`` writes
the summary the engine computed; ``audit --sql ... --connection ...`` audits it at once
(:func:`ecgaudit.pipeline.run_audit` with :class:`ecgaudit.pipeline.RowsElsewhere`). Dataset paths (Parquet/CSV, globs) are
read by the embedded DuckDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ecgaudit.config import AuditConfig
    from ecgaudit.summary import Summary

__all__ = ["ConnectionOption", "SqlOption", "engine_summary", "is_dataset",
           "summarize_engine"]

SqlOption = Annotated[str | None, typer.Option(
    "--sql", help="SELECT query giving the rows (run on --connection; the rows stay there).")]
ConnectionOption = Annotated[str | None, typer.Option(
    "--connection", help="Engine URL for --sql: duckdb://[file], "
    "postgresql://user:password@host:port/db, spark:local[2].")]


def is_dataset(paths: Sequence[Path]) -> bool:
    """Whether ``paths`` name a dataset for the embedded engine (several files or a glob)."""
    return len(paths) > 1 or any(ch in str(p) for p in paths for ch in "*?[")


def engine_summary(config: AuditConfig, *, sql: str | None, connection: str | None,
                   paths: Sequence[Path] = (), site: str | None = None, bins: int = 1024,
                   min_stratum: int = 1) -> Summary:
    """Open the rows in their engine and summarise them there (``summarize_where``)."""
    from ecgaudit.pipeline._warehouse import summarize_where

    return summarize_where(config, sql=sql, connection=connection, paths=paths, site=site,
                           bins=bins, min_stratum=min_stratum)


def summarize_engine(config_path: Path, out: Path, *, sql: str | None,
                     connection: str | None, paths: Sequence[Path] = (),
                     site: str | None = None, bins: int = 1024, min_stratum: int = 1) -> None:
    """Body of ``summarize --sql/--connection`` (or dataset paths): write the summary."""
    from ecgaudit.cli._summarize import describe
    from ecgaudit.config import load_config
    from ecgaudit.io import check_output_file
    from ecgaudit.summary import write_summary

    check_output_file(out, [*paths, config_path], "--out")
    summary = engine_summary(load_config(config_path), sql=sql, connection=connection,
                             paths=paths, site=site, bins=bins, min_stratum=min_stratum)
    written = write_summary(summary, out)
    typer.echo(describe(summary))
    typer.echo(f"summary: {written} ({written.stat().st_size} bytes, "
               f"sha256 of content {summary.header['content_sha256'][:16]}...)")
