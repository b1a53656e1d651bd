"""``ecgaudit audit --kind continuous`` through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from ecgaudit.cli import app
from ecgaudit.datasets import make_synthetic_potassium

runner = CliRunner()


def _args(path: Path, out: Path) -> list[str]:
    return ["audit", str(path), "--kind", "continuous", "--label", "k", "--score", "k_hat",
            "--race", "race", "--sex", "sex", "--age", "age", "--out", str(out)]


def test_one_file_continuous_audit(tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    make_synthetic_potassium(800, seed=2).to_csv(path, index=False)
    res = runner.invoke(app, _args(path, tmp_path / "out"))
    assert res.exit_code == 0, res.output
    assert "continuous tasks" in res.output and "race=Black" in res.output
    m = pd.read_csv(tmp_path / "out" / "metrics.csv")
    assert {"bias", "mae", "loa_upper", "slope"} <= set(m.metric)
    assert (tmp_path / "out" / "report.html").is_file()


def test_bad_measured_values_exit_2_and_write_nothing(tmp_path: Path) -> None:
    frame = make_synthetic_potassium(200, seed=2).astype({"k": object})
    frame.loc[4, "k"] = "haemolysed"
    path = tmp_path / "k.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    res = runner.invoke(app, _args(path, out))
    assert res.exit_code == 2
    assert "k.csv, column 'k', row 5: measured values must be numbers" in res.output
    assert "'haemolysed'" in res.output
    assert "Traceback" not in res.output
    assert not out.exists() or not any(out.iterdir())
