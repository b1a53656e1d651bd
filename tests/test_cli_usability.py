"""Everyday use of the command line: version, fast help, one output flag, progress bars."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ecgaudit
from ecgaudit.cli import app
from ecgaudit.cli._progress import progress_enabled
from ecgaudit.datasets import make_synthetic_cohort

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "numpy", "scipy", "numba", "torch", "matplotlib", "sklearn", "jinja2")
runner = CliRunner()

PROBE = """
import sys
from ecgaudit.cli import main
sys.argv = ["ecgaudit", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY=" + ",".join(heavy))
"""


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **extra}
    env.pop("CI", None)
    env.update(extra)
    return env


def test_version_prints_and_exits_zero() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"ecgaudit {ecgaudit.__version__}"


@pytest.mark.parametrize("args", [["--help"], ["audit", "--help"], ["report", "--help"],
                                  ["compare", "--help"], ["--version"]])
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
                         capture_output=True, text=True, env=_env(), timeout=60, check=True)
    assert "Usage" in out.stdout or "ecgaudit" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "HEAVY=", out.stdout[-300:]


def test_out_is_the_output_flag_everywhere() -> None:
    for command in ("audit", "predict", "report", "gate", "compare", "finetune"):
        res = runner.invoke(app, [command, "--help"], terminal_width=200)
        assert res.exit_code == 0, res.output
        assert "-o, --out" in res.output or "--out  -o" in res.output, (command, res.output)
    # the old `report --output` spelling still works but is not advertised
    assert "--output" not in runner.invoke(app, ["report", "--help"]).output


@pytest.mark.parametrize("command", ["audit", "summarize", "gate", "compare", "export"])
def test_help_marks_read_plainly(command: str) -> None:
    """``[required]`` and ``[default: ...]`` carry no stray escape backslash."""
    res = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "[required]" in res.output or "[default:" in res.output, res.output
    assert "\\[" not in res.output, res.output


def test_report_out_and_hidden_output_alias(tmp_path: Path) -> None:
    frame = make_synthetic_cohort(600, seed=2, tasks=("hf",)).frame
    result = ecgaudit.audit(frame, {"tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
                                    "attributes": {"sex": {}},
                                    "threshold": {"rule": "fixed", "value": 0.3}})
    result.save(tmp_path / "res")
    for flag in ("--out", "-o", "--output"):
        target = tmp_path / f"report{flag.strip('-')}.html"
        res = runner.invoke(app, ["report", str(tmp_path / "res"), flag, str(target)])
        assert res.exit_code == 0, res.output
        assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_audit_reports_every_step_to_the_callback() -> None:
    events: list[tuple[str, int, int]] = []
    frame = make_synthetic_cohort(800, seed=1, tasks=("hf",)).frame
    ecgaudit.audit(frame, {"tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
                           "attributes": {"sex": {}, "race": {}}, "bootstrap": 20,
                           "threshold": {"rule": "fixed", "value": 0.3}},
                   progress=lambda *e: events.append(e))
    total = events[0][2]
    assert [i for _, i, _ in events[:-1]] == list(range(1, total + 1))
    assert events[-1] == ("done", total, total)
    assert any(step.startswith("bootstrap: 20") for step, _, _ in events)


@pytest.mark.parametrize(("tty", "ci", "quiet", "expected"), [
    (True, None, False, True), (True, "true", False, False), (True, "0", False, True),
    (True, None, True, False), (False, None, False, False)])
def test_progress_only_on_a_terminal_outside_ci(monkeypatch: pytest.MonkeyPatch, tty: bool,
                                               ci: str | None, quiet: bool,
                                               expected: bool) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert progress_enabled(quiet) is expected


def _audit_on_pty(tmp_path: Path, *extra: str, env: dict[str, str]) -> str:
    """Run `ecgaudit audit` with stderr on a pseudo-terminal and return what it drew."""
    data = tmp_path / "small.csv"
    if not data.exists():
        make_synthetic_cohort(400, seed=3, tasks=("hf",)).frame.to_csv(data, index=False)
    master, slave = pty.openpty()
    cmd = [sys.executable, "-m", "ecgaudit", "audit", str(data), "--label", "y_hf",
           "--score", "p_hf", "--sex", "sex", "--threshold", "0.3",
           "--out", str(tmp_path / "out"), "--no-report", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    assert proc.returncode == 0
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_audit_draws_progress_on_a_terminal_and_not_in_ci(tmp_path: Path) -> None:
    # the numpy engine: no compilation in the three short subprocesses
    drawn = _audit_on_pty(tmp_path, env=_env(TERM="xterm", ECGAUDIT_ENGINE="numpy"))
    for step in ("reading input files", "validating and joining inputs",
                 "point estimates and closed-form intervals", "reliability curves"):
        assert f"done: {step}" in drawn, drawn[-2000:]
    quiet_env = _env(TERM="xterm", ECGAUDIT_ENGINE="numpy")
    assert _audit_on_pty(tmp_path, env={**quiet_env, "CI": "true"}) == ""
    assert _audit_on_pty(tmp_path, "--quiet", env=quiet_env) == ""
