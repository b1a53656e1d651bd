"""Stages in their lanes: the workflow API, the typed config on results, the small-cell rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ecgaudit import AuditResult, audit
from ecgaudit.cli import app
from ecgaudit.config import AuditConfig, parse_config
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.errors import ConfigError, InputError
from ecgaudit.pipeline import (
    AuditOutcome,
    compare_files,
    config_from_result,
    read_gate,
    render_saved_report,
    run_audit,
)
from ecgaudit.privacy import is_small_cell, min_cell_size_of, too_small_to_draw

CONFIG = {
    "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
    "attributes": {"race": {"reference": "White"}, "sex": {}},
    "id_column": "ecg_id",
    "patient_column": "patient_id",
    "min_cell_size": 13,
}
POLICY = """
name: auroc-parity
rules:
  - id: auroc-gap
    metric: auroc
    max_abs_difference: 0.10
    judge: ci
    attributes: [race]
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("lanes")
    make_synthetic_cohort(n=1500, seed=4).frame.to_csv(tmp / "preds.csv", index=False)
    (tmp / "policy.yaml").write_text(POLICY)
    return {"preds": tmp / "preds.csv", "policy": tmp / "policy.yaml", "dir": tmp}


def test_run_audit_writes_one_set_and_returns_the_gate(files: dict[str, Path],
                                                       tmp_path: Path) -> None:
    cfg = parse_config(CONFIG)
    outcome = run_audit(cfg, files["preds"], out=tmp_path / "res", policy=files["policy"],
                        junit=tmp_path / "gate.xml")
    assert isinstance(outcome, AuditOutcome)
    assert outcome.gate is not None
    assert outcome.exit_code == outcome.gate.exit_code
    names = {"metrics.csv", "disparities.csv", "results.json", "gate.json", "report.html",
             "junit"}
    assert names <= set(outcome.paths)
    assert all(p.is_file() for p in outcome.paths.values())
    saved = json.loads((tmp_path / "res" / "gate.json").read_text())
    assert saved == json.loads(outcome.gate.to_json())
    assert outcome.result.config == cfg


def test_cli_audit_and_library_workflow_write_the_same_bytes(files: dict[str, Path],
                                                             tmp_path: Path) -> None:
    cfg_path = tmp_path / "audit.yaml"
    cfg_path.write_text(json.dumps(CONFIG))  # JSON is YAML
    run_audit(parse_config(CONFIG, source="audit.yaml"), files["preds"], out=tmp_path / "api",
              policy=files["policy"])
    res = CliRunner().invoke(app, ["audit", str(files["preds"]), "--config", str(cfg_path),
                                   "--policy", str(files["policy"]), "--no-fail-on-policy",
                                   "--out", str(tmp_path / "cli"), "--quiet"])
    assert res.exit_code == 0, res.output
    for name in ("results.json", "metrics.csv", "gate.json"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()


def test_run_audit_refuses_half_given_model_inputs(files: dict[str, Path],
                                                   tmp_path: Path) -> None:
    from ecgaudit.pipeline import ModelInputs

    with pytest.raises(ConfigError, match="together"):
        run_audit(parse_config(CONFIG), None, out=tmp_path / "x",
                  model=ModelInputs(model=files["preds"]))
    with pytest.raises(ConfigError, match="predictions file"):
        run_audit(parse_config(CONFIG), None, out=tmp_path / "x")
    assert not (tmp_path / "x" / "results.json").exists()


def test_saved_result_carries_the_typed_config(files: dict[str, Path], tmp_path: Path) -> None:
    cfg = parse_config({**CONFIG, "intersections": "pairs"})
    result = audit(make_synthetic_cohort(n=800, seed=2).frame, cfg)
    assert result.config is cfg
    result.save(tmp_path / "r")
    loaded = AuditResult.load(tmp_path / "r")
    assert isinstance(loaded.config, AuditConfig)
    assert loaded.config.min_cell_size == 13 == min_cell_size_of(loaded)
    assert list(loaded.config.attributes) == ["race", "sex"]  # order restored from extras
    assert config_from_result(loaded) is loaded.config
    # the typed config never changes the serialised bytes
    assert loaded.to_json() == (tmp_path / "r" / "results.json").read_text()


def test_result_without_a_config_falls_back_and_compare_says_why() -> None:
    bare = AuditResult(metrics=audit(make_synthetic_cohort(n=300, seed=1).frame,
                                     CONFIG).metrics.iloc[:0],
                       disparities=audit(make_synthetic_cohort(n=300, seed=1).frame,
                                         CONFIG).disparities.iloc[:0],
                       manifest={"config": {"min_cell_size": 7}})
    assert bare.config is None  # a partial config does not parse
    assert min_cell_size_of(bare) == 7
    with pytest.raises(ConfigError):
        config_from_result(bare)
    with pytest.raises(InputError, match="no audit config"):
        config_from_result(AuditResult(bare.metrics, bare.disparities, manifest={}))


def test_the_two_small_cell_predicates_differ_only_at_zero() -> None:
    counts = np.array([0, 1, 10, 11, 12, np.nan])
    assert is_small_cell(counts, 11).tolist() == [False, True, True, False, False, False]
    assert too_small_to_draw(counts, 11).tolist() == [True, True, True, False, False, False]


def test_compare_files_and_saved_report(files: dict[str, Path], tmp_path: Path) -> None:
    cfg = parse_config(CONFIG)
    out = run_audit(cfg, files["preds"], out=tmp_path / "res", policy=files["policy"],
                    report=False)
    cand, comp = compare_files(tmp_path / "res", tmp_path / "res")
    assert comp.method == "unpaired"
    ok = comp.table[comp.table["status"] == "ok"]
    assert len(ok) and np.allclose(ok["change"].to_numpy(dtype=float), 0.0)
    with pytest.raises(ConfigError, match="both"):
        compare_files(tmp_path / "res", tmp_path / "res", baseline_predictions=files["preds"])
    assert read_gate(out.paths["gate.json"])["status"] == out.gate.status  # type: ignore[union-attr]
    page = render_saved_report(tmp_path / "res", tmp_path / "report.html",
                               gate=out.paths["gate.json"])
    status = out.gate.status  # type: ignore[union-attr]
    assert f'data-gate-status="{status}"' in page.read_text()
    assert "auroc-gap" in page.read_text()
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(InputError, match="not a gate result"):
        read_gate(tmp_path / "bad.json")
    assert cand.config is not None
    # a loaded config names its intersections explicitly (same groups as "pairs")
    assert cand.config.to_dict() == {**cfg.to_dict(), "intersections": [["race", "sex"]]}
