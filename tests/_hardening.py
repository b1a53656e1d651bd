"""Shared helpers of the hardening tests (issue 13): good inputs and CLI runners."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from ecgaudit.cli import app

ROOT = Path(__file__).resolve().parents[1]
EX_MODEL = ROOT / "examples" / "ptbxl_model"
WEIGHTS = EX_MODEL / "ecgresnet_ptbxl.safetensors"
MODEL_CONFIG = EX_MODEL / "ecgresnet_ptbxl.json"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
runner = CliRunner()


def good_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """A small valid predictions table with ids, one task, sex and age."""
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    return pd.DataFrame({
        "ecg_id": np.arange(1, n + 1),
        "y": y,
        "p": np.clip(0.3 + 0.4 * y + rng.normal(0, 0.15, n), 0, 1).round(4),
        "sex": np.where(np.arange(n) % 3 == 0, "female", "male"),
        "age": rng.integers(20, 90, n).astype(float),
    })


AUDIT_FLAGS = ("--label", "y", "--score", "p", "--sex", "sex", "--no-report")


def invoke(args: list[str], env: dict[str, str] | None = None):
    """Run the real Typer app in-process (stdout and stderr together in ``.output``)."""
    return runner.invoke(app, [str(a) for a in args], env=env)


def run_cli(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
            prefix: list[str] | None = None, timeout: int = 300
            ) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m ecgaudit`` in a subprocess; output kept as raw bytes."""
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("PYTHONPATH", str(ROOT))
    cmd = [*(prefix or []), sys.executable, "-m", "ecgaudit", *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, env=full_env, cwd=cwd, timeout=timeout,
                          check=False)


def assert_exit2(result, *needles: str, out: Path | None = None,
                 absent: tuple[str, ...] = ()) -> str:
    """Exit 2, every needle in the message, no traceback, nothing written to ``out``."""
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text and "internal error" not in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    for bad in absent:
        assert bad not in text, f"{bad!r} leaked into:\n{text}"
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), "no output may be written on error"
        if not out.exists():
            assert not (out.parent / f".{out.name}.lock").exists(), "no lock file litter"
    return text


def csv_cells(path: Path) -> list[list[str]]:
    """Every row of a CSV file as parsed by the csv module (header included)."""
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def assert_no_formula_cells(path: Path) -> None:
    """No cell (header included) starts like a spreadsheet formula, except numbers."""
    for row in csv_cells(path):
        for cell in row:
            if cell.startswith(FORMULA_START):
                try:
                    float(cell)
                except ValueError:
                    raise AssertionError(f"{path.name}: formula-like cell {cell!r}") from None
