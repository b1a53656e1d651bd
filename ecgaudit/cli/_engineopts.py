"""Engine options shared by ``summarize`` and ``audit``: ``--sql``, ``--connection``, datasets.

The rows stay in their engine (:mod:`ecgaudit.pipeline._warehouse`): ``summarize`` writes
the summary the engine computed; ``audit --sql ... --connection ...`` audits it at once
(``audit --from-summaries`` of that one summary). Dataset paths (Parquet/CSV, globs) are
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

__all__ = ["ConnectionOption", "SqlOption", "audit_engine", "engine_summary",
           "is_dataset", "summarize_engine"]

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
    """Open the rows in their engine and summarise them there."""
    from ecgaudit.io._warehouse import open_source
    from ecgaudit.pipeline._warehouse import summarize_source

    source = open_source(sql=sql, connection=connection, paths=list(paths))
    try:
        return summarize_source(source, config, site=site, bins=bins,
                                min_stratum=min_stratum)
    finally:
        source.close()


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


def audit_engine(cfg: AuditConfig, config: Path | None, *, sql: str | None,
                 connection: str | None, out: Path, policy: Path | None, junit: Path | None,
                 report: bool, fail_on_policy: bool, quiet: bool,
                 templates: Path | None) -> None:
    """``audit --sql ... --connection ...``: summarise in the engine, audit the summary."""
    from ecgaudit.cli._gate import run_gate, write_gate_outputs
    from ecgaudit.cli._progress import step_progress
    from ecgaudit.cli._summary import print_summary, print_verdicts
    from ecgaudit.errors import ConfigError
    from ecgaudit.io import write_output_set
    from ecgaudit.pipeline._fromsummaries import audit_summaries
    from ecgaudit.reports import render_html

    if config is None:
        raise ConfigError("--sql/--connection needs --config (binary tasks, fixed thresholds)")
    summary = engine_summary(cfg, sql=sql, connection=connection)
    with step_progress(quiet) as steps:
        result = audit_summaries([summary], cfg, progress=steps)
    files = result.output_files()
    print_summary(result)
    gate = run_gate(result, policy) if policy is not None else None
    if gate is not None:
        files["gate.json"] = gate.to_json().encode("utf-8")
    print_verdicts(result, gate.to_dict() if gate is not None else None)
    if report:
        files["report.html"] = render_html(
            result, gate=gate.to_dict() if gate is not None else None,
            templates=templates).encode("utf-8")
    written = write_output_set(out, files)
    if gate is not None and junit is not None:
        write_gate_outputs(gate, None, junit)
    typer.echo(f"results: {written['results.json']}")
    if gate is not None and fail_on_policy and gate.exit_code != 0:
        raise typer.Exit(gate.exit_code)
