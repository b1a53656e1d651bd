"""``ecgaudit export``: standards-committee exports (CHAI, HTI-1, TRIPOD+AI, STANDING)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ecgaudit.cli._app import app, cli_errors
from ecgaudit.errors import InputError


@app.command()
@cli_errors
def export(
    results: Annotated[Path, typer.Argument(help="results.json (or the folder holding it).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="chai | hti1 | tripod | standing")],
    output: Annotated[Path, typer.Option("--out", "-o", "--output", help="File to write: .json (any format) or .xml (chai).")],
    evaluation: Annotated[str, typer.Option(help="hti1: the audited data are local | internal | external to the training data.")] = "local",
) -> None:
    """Export one audit result for a standards committee (see docs/views.md)."""
    from ecgaudit.io import atomic_write_text, check_output_file
    from ecgaudit.reports._chai import chai_card_xml
    from ecgaudit.reports._hti1 import EVALUATIONS
    from ecgaudit.reports._standards import EXPORT_FORMATS, build_export
    from ecgaudit.result import AuditResult

    if fmt not in EXPORT_FORMATS:
        raise InputError(f"--format '{fmt}' is not known; use one of {', '.join(EXPORT_FORMATS)}")
    if evaluation not in EVALUATIONS:
        raise InputError(f"--evaluation '{evaluation}' is not known; use one of {', '.join(EVALUATIONS)}")
    suffix = output.suffix.lower()
    if suffix not in (".json", ".xml") or (suffix == ".xml" and fmt != "chai"):
        raise InputError(f"--output '{output.name}': write .json (or .xml for --format chai)")
    check_output_file(output, [results], "--out")
    data = AuditResult.load(results).to_dict()
    out = build_export(data, fmt, evaluation=evaluation)
    text = (chai_card_xml(out) if suffix == ".xml"
            else json.dumps(out, indent=2, sort_keys=False, ensure_ascii=False) + "\n")
    atomic_write_text(output, text)
    typer.echo(f"{fmt} export written: {output} ({out['standard']} {out['standard_version']})")
