"""``ecgaudit report``: re-render the HTML report of a saved result without recomputing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ecgaudit.cli._app import app, cli_errors
from ecgaudit.errors import InputError

GATE_UNREADABLE = "cannot read gate file '{name}': {reason}"
GATE_NOT_JSON = "'{name}' is not valid JSON: {reason}. Pass the gate.json written by `ecgaudit gate`."
GATE_NOT_GATE = (
    "'{name}' is not a gate result: expected an object with 'status' and 'rules'. "
    "Pass the gate.json written by `ecgaudit gate`."
)


def read_gate(path: Path) -> dict[str, Any]:
    """Read and minimally check a ``gate.json`` file.

    Raises
    ------
    InputError
        If the file cannot be read or is not a gate result.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise InputError(GATE_UNREADABLE.format(name=path.name, reason=err.strerror)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(GATE_NOT_JSON.format(name=path.name, reason=err)) from None
    if not isinstance(data, dict) or "status" not in data or not isinstance(
        data.get("rules", []), list
    ):
        raise InputError(GATE_NOT_GATE.format(name=path.name))
    return data


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
    from ecgaudit.reports import write_report
    from ecgaudit.result import AuditResult

    dest = output if output is not None else out
    check_output_file(dest, [results, gate], "--out")
    result = AuditResult.load(results)
    gate_data = read_gate(gate) if gate is not None else None
    path = write_report(result, dest, gate=gate_data,
                        templates=templates)
    typer.echo(f"report written: {path}")
