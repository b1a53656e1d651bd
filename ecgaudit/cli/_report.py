"""``ecgaudit report``: re-render the HTML report of a saved result without recomputing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ecgaudit.cli._app import app, cli_errors


def read_gate(path: Path) -> dict[str, Any]:
    """Read and minimally check a ``gate.json`` file (see :func:`ecgaudit.pipeline.read_gate`).

    Raises
    ------
    InputError
        If the file cannot be read or is not a gate result.
    """
    from ecgaudit.pipeline import read_gate as _read_gate

    return _read_gate(path)


@app.command(no_args_is_help=True)
@cli_errors
def report(
    results: Annotated[Path, typer.Argument(help="results.json (or the folder holding it).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    gate: Annotated[
        Path | None, typer.Option("--gate", help="gate.json from `ecgaudit gate` to show.")
    ] = None,
    templates: Annotated[Path | None, typer.Option(
        help="Folder of report templates overriding the bundled ones (see docs/report.md).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", hidden=True,
                                                help="Old spelling of --out.")] = None,
) -> None:
    """Render the HTML audit report of a saved result (no recomputation)."""
    from ecgaudit.io import check_output_file
    from ecgaudit.pipeline import render_saved_report

    dest = output if output is not None else out
    check_output_file(dest, [results, gate], "--out")
    path = render_saved_report(results, dest, gate=gate, templates=templates)
    typer.echo(f"report written: {path}")
