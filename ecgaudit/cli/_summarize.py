"""``ecgaudit summarize``: a site's sufficient statistics as a summary file.

``audit --from-summaries`` is the library workflow :func:`ecgaudit.pipeline.run_audit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ecgaudit.cli._app import app, cli_errors
from ecgaudit.cli._engineopts import ConnectionOption, SqlOption
from ecgaudit.errors import ConfigError

if TYPE_CHECKING:
    from ecgaudit.summary import Summary


def describe(summary: Summary) -> str:
    """One paragraph: what the summary file reveals."""
    cells = summary.cells
    h = summary.header
    n = cells["n"].to_numpy()
    strata = cells.drop_duplicates([c for c in cells.columns if c.startswith("a:")])
    reps = h.get("replicates")
    return (f"site '{h['site']}': {h['n_ecgs']} ECGs in {len(strata)} finest strata, "
            f"{len(cells)} cells over {len(h['tasks'])} task(s) on a {h['grid']['bins']}-bin "
            f"score grid; the smallest cell holds {int(n.min()) if n.size else 0} ECG(s). The "
            "file reveals, per task, stratum, score bin and label, the number of ECGs and "
            "the sum of their scores" + (f", and {reps['B']} bootstrap replicates of the "
                                         "counts" if reps else "")
            + f"; {h['small_cell']['dropped_strata']} strata under "
            f"{h['small_cell']['min_stratum']} ECGs were left out. No rows, no identifiers.")


@app.command(no_args_is_help=True)
@cli_errors
def summarize(
    config: Annotated[Path, typer.Option(help="The audit config every site shares (binary tasks, fixed thresholds).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Summary file to write (Parquet).")],
    predictions: Annotated[list[Path] | None, typer.Argument(help="Predictions file (CSV, CSV.gz or Parquet) of one site; several files or a glob are read as one dataset by the embedded DuckDB.", show_default=False)] = None,
    sql: SqlOption = None,
    connection: ConnectionOption = None,
    metadata: Annotated[Path | None, typer.Option(help="Demographics file, joined on the config's id column.")] = None,
    site: Annotated[str | None, typer.Option(help="The site's name (default: the file name's stem).")] = None,
    bins: Annotated[int, typer.Option(help="Bins of the shared score grid (8..65536; coarser reveals less; all sites alike).")] = 1024,
    min_stratum: Annotated[int, typer.Option(help="Leave out finest strata with fewer ECGs (the site's small-cell rule).")] = 1,
    replicates: Annotated[int, typer.Option(min=0, help="Poisson bootstrap replicates hashed from the patient id and the config's seed (with --sql or a dataset the rows are streamed here in batches).")] = 0,
) -> None:
    """Write a site's sufficient statistics (no rows, no identifiers) as a summary file."""
    from ecgaudit.cli._engineopts import is_dataset
    from ecgaudit.io import check_output_file
    from ecgaudit.summary import write_summary

    paths = list(predictions or [])
    in_engine = bool(sql or connection or is_dataset(paths))
    if in_engine and metadata is not None:
        raise ConfigError("--metadata needs a single predictions file; with --sql/"
                          "--connection or a dataset, join the demographics in the query "
                          "(docs/warehouse.md)")
    if not in_engine and not paths:
        raise ConfigError("summarize needs a predictions file, a dataset (several files or a "
                          "glob) or --sql with --connection")
    check_output_file(out, [*paths, metadata, config], "--out")
    if in_engine:  # the rows stay where they are: DuckDB for datasets, else --connection
        from ecgaudit.config import load_config
        from ecgaudit.pipeline._warehouse import summarize_where

        summary = summarize_where(load_config(config), sql=sql, connection=connection,
                                  paths=paths, site=site, bins=bins, min_stratum=min_stratum,
                                  replicates=replicates)
    else:
        from ecgaudit.pipeline._summaries import summarize_files

        summary = summarize_files(paths[0], config, metadata=metadata, site=site, bins=bins,
                                  min_stratum=min_stratum, replicates=replicates)
    written = write_summary(summary, out)
    typer.echo(describe(summary))
    typer.echo(f"summary: {written} ({written.stat().st_size} bytes, "
               f"sha256 of content {summary.header['content_sha256'][:16]}...)")
