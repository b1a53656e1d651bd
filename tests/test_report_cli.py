"""``ecgaudit report``: re-render a saved result, with and without a gate result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ecgaudit
from ecgaudit.cli import app
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.policy import evaluate, parse_policy
from ecgaudit.reports import render_html

runner = CliRunner()


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = make_synthetic_cohort(2000, seed=4, tasks=("hf",),
                                  group_separation={"Black": 0.8}).frame
    result = ecgaudit.audit(frame, {
        "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
        "attributes": {"race": {"reference": "White"}, "sex": {}},
        "threshold": {"rule": "fixed", "value": 0.3},
    })
    out = tmp_path_factory.mktemp("saved")
    result.save(out)
    gate = evaluate(result, parse_policy(
        {"rules": [{"metric": "auroc", "max_abs_difference": 0.02, "judge": "point"}]}, result))
    (out / "gate.json").write_text(json.dumps(gate.to_dict()), encoding="utf-8")
    return out


def test_report_command_rerenders_saved_result(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "r" / "report.html"
    res = runner.invoke(app, ["report", str(saved / "results.json"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.name in res.output
    expected = render_html(ecgaudit.AuditResult.load(saved / "results.json"))
    assert out.read_text(encoding="utf-8") == expected


def test_report_command_shows_gate(saved: Path, tmp_path: Path) -> None:
    out = tmp_path / "gated.html"
    res = runner.invoke(app, ["report", str(saved), "-o", str(out),
                              "--gate", str(saved / "gate.json")])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    status = json.loads((saved / "gate.json").read_text())["status"]
    assert status == "fail"
    assert 'data-gate-status="fail"' in html and "fails policy" in html


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read gate file 'gate.json'"),
    ("{not json", "'gate.json' is not valid JSON"),
    ('{"rules": []}', "'gate.json' is not a gate result"),
])
def test_report_command_bad_gate_exits_2(saved: Path, tmp_path: Path, content: str | None,
                                         message: str) -> None:
    gate = tmp_path / "gate.json"
    if content is not None:
        gate.write_text(content, encoding="utf-8")
    out = tmp_path / "report.html"
    res = runner.invoke(app, ["report", str(saved), "-o", str(out), "--gate", str(gate)])
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_report_command_missing_results_exits_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["report", str(tmp_path / "nope.json"), "-o",
                              str(tmp_path / "r.html")])
    assert res.exit_code == 2
    assert "nope.json" in res.output
