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


def test_results_json_byte_identical_and_report_rerenders(tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    make_synthetic_potassium(600, seed=4).to_csv(path, index=False)
    outs = []
    for name in ("a", "b"):
        res = runner.invoke(app, [*_args(path, tmp_path / name), "--bootstrap", "40"])
        assert res.exit_code == 0, res.output
        outs.append((tmp_path / name / "results.json").read_bytes())
    assert outs[0] == outs[1]
    res = runner.invoke(app, ["report", str(tmp_path / "a" / "results.json"), "--output",
                              str(tmp_path / "again.html")])
    assert res.exit_code == 0, res.output
    again = (tmp_path / "again.html").read_text(encoding="utf-8")
    assert again == (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "Continuous outcomes: agreement by group" in again


def test_unknown_kind_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    make_synthetic_potassium(100, seed=1).to_csv(path, index=False)
    args = _args(path, tmp_path / "out")
    args[args.index("continuous")] = "regression"
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert "--kind must be 'binary' or 'continuous', not 'regression'" in res.output
