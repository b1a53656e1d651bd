"""Issue 13, class 2: no export runs as a formula, JUnit always parses, and terminal output
never interprets escape sequences from the data - through the real CLI."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from ecgaudit._text import visible, xml_safe
from ecgaudit.io import frame_to_csv
from tests._hardening import (
    AUDIT_FLAGS,
    ROOT,
    assert_exit2,
    assert_no_formula_cells,
    csv_cells,
    good_frame,
    invoke,
    run_cli,
)

# (tab / CR prefixes are stripped from group names; the writer's own test covers them)
FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-2+3", "@SUM(A1)"]
OSC = "\x1b]0;pwned\x07"


def _frame_with_groups(groups: list[str], n: int = 120) -> pd.DataFrame:
    f = good_frame(n)
    f["site"] = [groups[i % len(groups)] for i in range(n)]
    return f


def test_every_csv_cell_is_neutralised_and_json_keeps_raw_values(tmp_path: Path) -> None:
    f = _frame_with_groups(FORMULAS)
    f.to_csv(tmp_path / "preds.csv", index=False)
    out = tmp_path / "o"
    res = invoke(["audit", tmp_path / "preds.csv", *AUDIT_FLAGS, "--attribute", "site",
                  "--min-cell", "1", "--out", out])
    assert res.exit_code == 0, res.output
    for name in ("metrics.csv", "disparities.csv"):
        assert_no_formula_cells(out / name)
    groups = {row[2] for row in csv_cells(out / "metrics.csv")[1:] if row[1] == "site"}
    assert "'=HYPERLINK(\"http://x\",\"y\")" in groups and "'@SUM(A1)" in groups
    assert "'-2+3" in groups and "'+1+2" in groups
    data = json.loads((out / "results.json").read_text())
    raw = {m["group"] for m in data["metrics"] if m["attribute"] == "site"}
    assert set(FORMULAS) <= raw  # JSON is data, not a spreadsheet: raw values


def test_numbers_are_not_touched_but_text_is() -> None:
    frame = pd.DataFrame({"g": ["-1", "=1", "\rok", "\tx"], "x": [-0.5, 1.0, -2.0, 3.0],
                          "=head": [1, 2, 3, 4]})
    text = frame_to_csv(frame)
    assert text.splitlines()[0] == "g,x,'=head"
    assert text.splitlines()[1] == "'-1,-0.5,1"
    assert text.split("\n")[2] == "'=1,1.0,2"
    assert text.split("\n")[3] == "'\\x0dok,-2.0,3"
    assert text.split("\n")[4] == "'\tx,3.0,4"


def test_no_module_writes_csv_around_the_safe_writer() -> None:
    offenders = []
    for path in (ROOT / "ecgaudit").rglob("*.py"):
        if path.name == "_csv.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.to_csv\(|csv\.writer\(", line):
                offenders.append(f"{path.relative_to(ROOT)}:{i}")
    assert not offenders, f"write CSV with ecgaudit.io.frame_to_csv: {offenders}"


def test_junit_with_escape_characters_parses(tmp_path: Path) -> None:
    f = _frame_with_groups(["a\x1b[31mred", "b\x08bs", "c\x0bvt"])
    f.to_csv(tmp_path / "preds.csv", index=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text("name: p\nrules:\n  - metric: auroc\n    min: 0.99\n    judge: point\n")
    res = invoke(["audit", tmp_path / "preds.csv", *AUDIT_FLAGS, "--attribute", "site",
                  "--min-cell", "1", "--policy", policy, "--junit", tmp_path / "gate.xml",
                  "--out", tmp_path / "o"])
    assert res.exit_code in (0, 1, 3), res.output
    root = ET.parse(tmp_path / "gate.xml").getroot()
    names = " ".join(case.get("name", "") for case in root.iter("testcase"))
    assert "\\x1b[31m" in names and "\x1b" not in names
    assert ET.fromstring(xml_safe("<a b='\x1b\x00'>\x08</a>")).get("b") == "\\x1b\\x00"


def test_terminal_output_shows_escape_sequences_instead_of_running_them(
        tmp_path: Path) -> None:
    f = good_frame(120)
    f["sex"] = [("male" if i % 2 else f"fe{OSC}male") for i in range(120)]
    f.to_csv(tmp_path / "preds.csv", index=False)
    res = run_cli(["audit", tmp_path / "preds.csv", *AUDIT_FLAGS, "--out", tmp_path / "o",
                   "--min-cell", "1"])
    assert res.returncode == 0, res.stderr.decode()
    assert b"\x1b]" not in res.stdout + res.stderr
    # An error naming a column with an escape sequence in it: shown, not interpreted.
    res = run_cli(["audit", tmp_path / "preds.csv", "--label", f"y{OSC}", "--score", "p",
                   "--out", tmp_path / "o2"])
    assert res.returncode == 2
    assert b"\x1b" not in res.stderr and b"\\x1b]0;pwned\\x07" in res.stderr
    assert b"Traceback" not in res.stderr


def test_visible_escapes_controls_and_bidi_but_keeps_text() -> None:
    assert visible("caf\u00e9 \u2014 \u4e2d") == "caf\u00e9 \u2014 \u4e2d"
    assert visible("a\x1b[2Jb\x9bc\u202ed") == "a\\x1b[2Jb\\x9bc\\u202ed"
    assert visible("l1\nl2") == "l1\nl2"
    assert visible("l1\nl2", keep_newlines=False) == "l1\\nl2"


def test_warnings_are_printed_with_escapes_visible(tmp_path: Path) -> None:
    script = ("import warnings, sys\n"
              "from ecgaudit.cli._app import _show_warning\n"
              "warnings.showwarning = _show_warning\n"
              f"warnings.warn({OSC!r} + ' group')\n")
    import subprocess
    import sys
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert b"\x1b" not in res.stderr and b"\\x1b]0;pwned" in res.stderr, res.stderr


def test_bad_input_through_gate_keeps_exit_2(tmp_path: Path) -> None:
    res = invoke(["gate", tmp_path / "missing.json", "--policy", tmp_path / "p.yaml"])
    assert_exit2(res, "missing.json")
