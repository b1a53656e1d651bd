"""``ecgaudit predict``: run a model over ECG waveforms and write a predictions table."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ecgaudit.cli._app import app, cli_errors, echo_err
from ecgaudit.cli._progress import progress_enabled
from ecgaudit.errors import InputError

#: Output suffixes understood by ``-o``.
OUTPUT_SUFFIXES = (".csv", ".parquet", ".pq")


def _write_table(frame: Any, out: Path) -> None:
    from ecgaudit.io import atomic_write_bytes, atomic_write_text, frame_to_csv

    suffix = out.suffix.lower()
    if suffix == ".csv":
        atomic_write_text(out, frame_to_csv(frame))
    elif suffix in (".parquet", ".pq"):
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        atomic_write_bytes(out, buf.getvalue())
    else:
        raise InputError(
            f"output '{out.name}': unknown format '{suffix}'; use one of {list(OUTPUT_SUFFIXES)}"
        )


class _Bar:
    """A rich progress bar on standard error showing ECGs/s and ETA (terminals only)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("scoring ECGs"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} ECGs/s"), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(stderr=True), transient=True,
        )
        self.task = self.progress.add_task("predict", total=None, rate="-")
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        self.progress.update(self.task, completed=done, total=total, rate=f"{rate:.0f}")

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


@contextlib.contextmanager
def progress_bar(quiet: bool = False) -> Iterator[_Bar | None]:
    """Yield a progress callback drawing a bar on a terminal, else ``None`` (CI, --quiet)."""
    if not progress_enabled(quiet):
        yield None
        return
    with _Bar() as bar:
        yield bar


@app.command(no_args_is_help=True)
@cli_errors
def predict(
    model: Annotated[Path, typer.Option(help="Model file: safetensors, .pt state dict, "
                                        "TorchScript or .onnx (never pickle).")],
    model_config: Annotated[Path, typer.Option(help="Model config JSON (fs, leads, "
                                               "classes, preprocessing, window).")],
    ecgs: Annotated[Path, typer.Option(help="WFDB folder or .hea, .npy/.npz array with "
                                       "index CSV, or CODE-15% .h5 file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (.csv or .parquet).")],
    metadata: Annotated[Path | None, typer.Option(
        help="Metadata CSV/Parquet joined on the model config's id column.")] = None,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 64,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:N or auto.")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="CPU threads for inference.")] = None,
    header_demographics: Annotated[bool, typer.Option(
        help="Add age and sex parsed from WFDB headers (Challenge records).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Score ECG waveforms with a model and write one score:<CLASS> column per class."""
    from ecgaudit.io import atomic_write_text, check_output_file
    from ecgaudit.models import predict_detailed

    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(
            f"output '{out.name}': unknown format '{out.suffix}'; use one of "
            f"{list(OUTPUT_SUFFIXES)}"
        )
    check_output_file(out, [model, model_config, ecgs, metadata], "--out")
    start = time.perf_counter()
    kwargs: dict[str, Any] = dict(batch_size=batch_size, device=device, threads=threads,
                                  metadata=metadata, header_demographics=header_demographics)
    with progress_bar(quiet) as bar:
        result = predict_detailed(model, model_config, ecgs, progress=bar, **kwargs)
    elapsed = time.perf_counter() - start
    _write_table(result.frame, out)
    manifest_path = out.with_name(out.name + ".manifest.json")
    atomic_write_text(manifest_path, json.dumps(result.manifest, indent=2, sort_keys=True) + "\n")
    n = result.manifest["n_scored"]
    echo_err(f"scored {n} ECGs in {elapsed:.1f} s ({n / max(elapsed, 1e-9):.0f} ECGs/s); "
             f"wrote {out.name} and {manifest_path.name}")
