"""`ecgaudit gate` end to end on synthetic cohorts with planted disparities.

Issue 5, done means: a large real gap exits 1; no gap in a large cohort exits 0; a gap in a
tiny group exits 3 (inconclusive), never 0 or 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser
import pytest
from typer.testing import CliRunner

from ecgaudit import audit
from ecgaudit.cli import app
from ecgaudit.datasets import make_synthetic_cohort
from tests.test_policy_junit import XSD, MiniXsd

CONFIG = {
    "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
    "attributes": {"race": {"reference": "White"}, "sex": {}},
    "intersections": "none",
    "id_column": "ecg_id",
    "patient_column": "patient_id",
}
AUROC_GAP_POLICY = """
name: auroc-parity
rules:
  - id: auroc-gap
    metric: auroc
    max_abs_difference: 0.10
    judge: ci
    attributes: [race, sex]
    exclude_groups: [Unknown]
"""


def _run(tmp: Path, frame_kwargs: dict[str, object], policy: str,
         *extra: str) -> tuple[int, str, Path]:
    cohort = make_synthetic_cohort(**frame_kwargs)  # type: ignore[arg-type]
    audit(cohort.frame, CONFIG).save(tmp / "res")
    (tmp / "policy.yaml").write_text(policy)
    result = CliRunner().invoke(app, ["gate", str(tmp / "res" / "results.json"), "--policy",
                                      str(tmp / "policy.yaml"), "--out", str(tmp / "gate.json"),
                                      "--junit", str(tmp / "gate.xml"), *extra])
    return result.exit_code, result.output, tmp / "gate.json"


def test_large_real_gap_fails_with_exit_1(tmp_path: Path) -> None:
    code, out, gate_path = _run(tmp_path, {"n": 6000, "seed": 3,
                                           "group_separation": {"Black": 0.5}},
                                AUROC_GAP_POLICY)
    gate = json.loads(gate_path.read_text())
    black = next(r for r in gate["rules"] if r["group"] == "Black")
    assert code == 1, out
    assert gate["status"] == "fail" and gate["exit_code"] == 1
    assert black["outcome"] == "fail"
    assert black["ci_high"] < -0.10   # the whole interval is beyond the tolerance
    assert "FAIL" in out and "auroc-gap" in out
    assert {r["group"] for r in gate["rules"] if r["outcome"] == "fail"} == {"Black"}


def test_no_gap_in_a_large_cohort_passes_with_exit_0(tmp_path: Path) -> None:
    code, out, gate_path = _run(tmp_path, {"n": 30000, "seed": 4}, AUROC_GAP_POLICY)
    gate = json.loads(gate_path.read_text())
    assert code == 0, out
    assert gate["status"] == "pass"
    assert gate["summary"]["fail"] == gate["summary"]["inconclusive"] == 0
    assert gate["summary"]["pass"] == 5  # Black, Asian, Hispanic, Other vs White; female vs male
    for r in gate["rules"]:
        assert -0.10 <= r["ci_low"] <= r["ci_high"] <= 0.10


def test_gap_in_a_tiny_group_is_inconclusive_exit_3(tmp_path: Path) -> None:
    # 'Other' is ~0.5% of 8000 (about 40 ECGs) and has a planted, large AUROC gap
    code, out, gate_path = _run(
        tmp_path,
        {"n": 8000, "seed": 11, "group_separation": {"Other": 0.4},
         "race_shares": (0.6, 0.15, 0.13, 0.115, 0.005)},
        AUROC_GAP_POLICY,
    )
    gate = json.loads(gate_path.read_text())
    other = next(r for r in gate["rules"] if r["group"] == "Other")
    assert code == 3, out
    assert gate["status"] == "inconclusive"
    assert other["outcome"] == "inconclusive"
    assert other["value"] is None or abs(other["value"]) > 0.10  # the gap is there, unproven
    assert gate["summary"]["fail"] == 0
    assert "INCONCLUSIVE" in out


def test_warn_policy_turns_exit_3_into_0_with_a_warning(tmp_path: Path) -> None:
    policy = AUROC_GAP_POLICY + "on_inconclusive: warn\n"
    code, out, _ = _run(
        tmp_path,
        {"n": 8000, "seed": 11, "group_separation": {"Other": 0.4},
         "race_shares": (0.6, 0.15, 0.13, 0.115, 0.005)},
        policy,
    )
    assert code == 0
    assert "warning: required rule 'auroc-gap' is inconclusive" in out


def test_outputs_are_valid_and_deterministic(tmp_path: Path) -> None:
    kwargs = {"n": 6000, "seed": 3, "group_separation": {"Black": 0.5}}
    _run(tmp_path / "a", kwargs, AUROC_GAP_POLICY)
    _run(tmp_path / "b", kwargs, AUROC_GAP_POLICY)
    for name in ("gate.json", "gate.xml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    root = ET.parse(tmp_path / "a" / "gate.xml").getroot()
    assert MiniXsd(XSD).validate(root) == []
    xml = junitparser.JUnitXml.fromfile(str(tmp_path / "a" / "gate.xml"))
    cases = [c for suite in xml for c in suite]
    gate = json.loads((tmp_path / "a" / "gate.json").read_text())
    assert len(cases) == len(gate["rules"])
    failed = [c.name for c in cases if c.result and isinstance(c.result[0], junitparser.Failure)]
    assert failed == ["hf | race=Black"]


@pytest.mark.parametrize(("policy", "message"), [
    ("rules:\n  - {metric: aucroc, min: 0.8}\n", "Did you mean 'auroc'"),
    ("rules:\n  - {metric: auroc, min: 0.8, attributes: [rase]}\n", "Did you mean 'race'"),
    ("rules:\n  - {metric: auroc, max_worsening: 0.01}\n", "ecgaudit compare"),
])
def test_bad_policy_exits_2_with_a_clear_message(tmp_path: Path, policy: str,
                                                 message: str) -> None:
    code, out, gate_path = _run(tmp_path, {"n": 1500, "seed": 1}, policy)
    assert code == 2
    assert message in out
    assert "Traceback" not in out
    assert not gate_path.exists()


def test_missing_results_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(AUROC_GAP_POLICY)
    result = CliRunner().invoke(app, ["gate", str(tmp_path / "nope.json"), "--policy",
                                      str(tmp_path / "p.yaml")])
    assert result.exit_code == 2
    assert "cannot read results file 'nope.json'" in result.output


def test_real_entry_point_returns_exit_3(tmp_path: Path) -> None:
    cohort = make_synthetic_cohort(n=8000, seed=11, group_separation={"Other": 0.4},
                                   race_shares=(0.6, 0.15, 0.13, 0.115, 0.005))
    audit(cohort.frame, CONFIG).save(tmp_path / "res")
    (tmp_path / "p.yaml").write_text(AUROC_GAP_POLICY)
    proc = subprocess.run(
        [sys.executable, "-m", "ecgaudit", "gate", str(tmp_path / "res"), "--policy",
         str(tmp_path / "p.yaml")], capture_output=True, text=True, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "inconclusive" in proc.stdout


def test_ptbxl_demo_policy_runs_on_the_real_example(tmp_path: Path,
                                                    ptbxl_paths: dict[str, Path]) -> None:
    from ecgaudit.pipeline import audit_files
    from ecgaudit.policy import evaluate, load_policy

    policy_path = Path(__file__).resolve().parents[1] / "examples" / "ptbxl" / "policy.yaml"
    result = audit_files(ptbxl_paths["predictions"], ptbxl_paths["config"],
                         metadata=ptbxl_paths["metadata"])
    policy = load_policy(policy_path, result=result)   # every name exists in the real result
    gate = evaluate(result, policy)
    assert gate.exit_code in (0, 1, 3)
    by_rule = {o.rule_id for o in gate.outcomes}
    assert by_rule == set(policy.rule_ids())
    # the advisory rules never decide the exit code
    advisory = {"fnr-ratio-age", "worst-site-auroc"}
    assert all(not o.required for o in gate.outcomes if o.rule_id in advisory)
    tasks = {o.task for o in gate.outcomes if o.rule_id == "data-per-group"}
    assert tasks == {"NORM", "AFIB", "LVH", "IMI", "CLBBB", "CRBBB"}
