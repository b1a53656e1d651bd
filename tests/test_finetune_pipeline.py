"""End to end: split -> adapt -> before/after audit -> gate, on the shipped real PTB-XL subset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from ecgaudit.cli import app
from ecgaudit.config import parse_config
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.errors import ConfigError, ValidationError
from ecgaudit.finetune import parse_finetune_config
from ecgaudit.finetune._data import score_windows
from ecgaudit.io import file_sha256
from ecgaudit.io.waveforms import open_ecgs
from ecgaudit.models import Preprocessor, load_model, load_model_config
from ecgaudit.pipeline._audit import audit
from ecgaudit.pipeline._finetune import finetune_and_audit
from ecgaudit.pipeline._finetunegate import before_after_gate, default_policy

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "ptbxl_model"
MODEL, MODEL_CFG = EX / "ecgresnet_ptbxl.safetensors", EX / "ecgresnet_ptbxl.json"
ECGS, META = EX / "waveforms_fold10.npz", EX / "metadata.csv"
TASKS = ["NORM", "MI", "STTC", "CD", "HYP"]


def _config(strategy: str, **extra: object) -> dict[str, object]:
    cfg: dict[str, object] = {
        "strategy": strategy, "tasks": TASKS,
        "attributes": {"age": {"kind": "age"}, "sex": {}},
        "split": {"seed": 0, "stratify": ["sex"]},
        "min_positives": {"train": 3, "val": 1, "test": 1},
        "training": {"epochs": 1, "batch_size": 16, "max_batches_per_epoch": 2, "lr": 1e-2,
                     "num_threads": 1},
        "gate": {"n_boot": 100, "on_inconclusive": "warn"},
        "audit": {"intersections": "none"},
    }
    cfg.update(extra)
    return cfg


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "checkpoints" not in p.parts}


def test_head_end_to_end_is_deterministic_and_exports_a_loadable_model(tmp_path: Path) -> None:
    a = finetune_and_audit(MODEL, MODEL_CFG, ECGS, META, _config("head"), tmp_path / "a")
    finetune_and_audit(MODEL, MODEL_CFG, ECGS, META, _config("head"), tmp_path / "b")
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert files_a == files_b  # byte-identical: weights, manifest, audits, comparison, gate
    for name in ("model.safetensors", "model.json", "manifest.json", "split.csv",
                 "audit/before/results.json", "audit/after/results.json",
                 "audit/comparison.json", "audit/gate.json", "audit/summary.json"):
        assert name in files_a
    man = json.loads(files_a["manifest.json"])
    assert man["parent_model"]["sha256"] == file_sha256(MODEL)
    assert man["training"]["best_epoch"] == 1  # the trained head was kept
    assert man["weights_sha256"] != man["parent_model"]["sha256"]
    assert sum(man["split"]["records"].values()) == 194
    # the exported model, loaded like any model, reproduces the "after" audit's AUROCs
    split = pd.read_csv(tmp_path / "a" / "split.csv")
    cfg = load_model_config(tmp_path / "a" / "model.json")
    adapted = load_model(tmp_path / "a" / "model.safetensors", cfg)
    prep = Preprocessor(cfg)
    recs = {r.record_id: prep(r) for r in open_ecgs(ECGS)}
    test_ids = split.loc[split["split"] == "test", "ecg_id"].tolist()
    scores = score_windows(adapted, np.stack([recs[str(i)] for i in test_ids]))  # text ids
    meta = pd.read_csv(META).set_index("ecg_id").loc[test_ids]
    m = a.after.metrics
    for j, task in enumerate(TASKS):
        row = m[(m.task == task) & (m.attribute == "overall") & (m.metric == "auroc")]
        assert row["estimate"].iloc[0] == pytest.approx(
            roc_auc_score(meta[f"label_{task}"], scores[:, j]), abs=1e-12)
    # the before/after page names no record, patient or path, and shows the gate
    page = files_a["audit/before_after.html"].decode()
    assert "Gate:" in page and "HYP: change in auroc by group" in page
    assert str(tmp_path) not in page and "<script" not in page
    meta_all = pd.read_csv(META)
    assert not any(f">{i}<" in page for i in meta_all["patient_id"].astype(str))
    assert "audit/report.html" in files_a
    # no patient is both fine-tuned on and audited
    pid = pd.read_csv(META).set_index("ecg_id")["patient_id"]
    by_split = split.assign(pid=split["ecg_id"].map(pid)).groupby("pid")["split"].nunique()
    assert by_split.max() == 1


def test_recalibrate_keeps_auroc_and_writes_postprocessing(tmp_path: Path) -> None:
    out = finetune_and_audit(MODEL, MODEL_CFG, ECGS, META,
                             _config("recalibrate", recalibration={"method": "temperature"}),
                             tmp_path)
    for r in out.summary["overall"]:
        assert r["after"]["estimate"] == pytest.approx(r["before"]["estimate"], abs=1e-12)
    post = json.loads((tmp_path / "postprocess.json").read_text())
    assert set(post["recalibration"]) == set(TASKS)
    assert (tmp_path / "model.safetensors").read_bytes() != b""
    assert json.loads((tmp_path / "manifest.json").read_text())["weights_sha256"] == \
        file_sha256(tmp_path / "model.safetensors")


def test_thresholds_report_cost_and_protected_attribute_warning(tmp_path: Path) -> None:
    out = finetune_and_audit(MODEL, MODEL_CFG, ECGS, META,
                             _config("thresholds", tasks=["NORM"],
                                     thresholds={"attribute": "sex"}), tmp_path)
    assert out.summary["uses_protected_attribute"] is True
    assert "protected attribute (sex)" in out.summary["warning"]
    cost = out.summary["threshold_cost"]["NORM"]
    assert cost["cost"]["sensitivity"] == pytest.approx(
        cost["sensitivity_after"] - cost["sensitivity_before"])
    assert out.summary["metric"] == "sensitivity"
    page = (tmp_path / "audit" / "before_after.html").read_text()
    assert "use the protected attribute (sex) at decision time" in page


def test_too_few_positives_fails_before_any_training(tmp_path: Path) -> None:
    cfg = _config("full", min_positives={"train": 50, "val": 1, "test": 1})
    with pytest.raises(ValidationError, match=r"too few positives for task 'HYP' in the train"):
        finetune_and_audit(MODEL, MODEL_CFG, ECGS, META, cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match=r"task 'AFIB' is not an output of the model"):
        finetune_and_audit(MODEL, MODEL_CFG, ECGS, META, _config("head", tasks=["AFIB"]),
                           tmp_path / "out")
    dup = pd.read_csv(META)
    dup.loc[5, "ecg_id"] = dup.loc[4, "ecg_id"]
    dup.to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(ValidationError, match=r"rows 5, 6: repeated record id"):
        finetune_and_audit(MODEL, MODEL_CFG, ECGS, tmp_path / "dup.csv", _config("head"),
                           tmp_path / "out")


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="split fractions train\\+val\\+test must sum to 1"):
        parse_finetune_config({"tasks": ["HYP"], "split": {"train": 0.5, "val": 0.5,
                                                           "test": 0.5}})
    with pytest.raises(ConfigError, match=r"split.stratify names unknown attributes \['race'\]"):
        parse_finetune_config({"tasks": ["HYP"], "split": {"stratify": ["race"]}})
    with pytest.raises(ConfigError, match=r"training\.epochz: unknown key"):
        parse_finetune_config({"tasks": ["HYP"], "training": {"epochz": 3}})


def test_calibration_bins_respect_small_cells() -> None:
    from ecgaudit.metrics import calibration_bins

    rng = np.random.default_rng(1)
    p = rng.random(95)
    y = (rng.random(95) < p).astype(int)
    bins = calibration_bins(p, y, min_cell=11)
    assert len(bins) == 8 and min(b["n"] for b in bins) >= 11
    order = np.argsort(p, kind="stable")
    first = order[: bins[0]["n"]]
    assert bins[0]["y_mean"] == pytest.approx(y[first].mean())
    assert bins[0]["p_mean"] == pytest.approx(p[first].mean())
    assert calibration_bins(p[:10], y[:10], min_cell=11) == []


@pytest.mark.parametrize("harm", [True, False])
def test_no_group_worse_gate_catches_a_planted_harm(harm: bool) -> None:
    frame = make_synthetic_cohort(6000, seed=5, separation=2.0).frame
    before = frame.rename(columns={"p_hf": "score"})
    after = before.copy()
    if harm:  # the adapted model loses most of its signal for women only
        rng = np.random.default_rng(0)
        f = (after["sex"] == "female").to_numpy()
        after.loc[f, "score"] = 0.3 * after.loc[f, "score"] + 0.7 * rng.random(f.sum())
    cfg = parse_finetune_config({"tasks": ["hf"], "labels": {"hf": "y_hf"},
                                 "attributes": {"sex": {}}, "gate": {"n_boot": 100}})
    audit_cfg = parse_config({"tasks": [{"name": "hf", "label": "y_hf", "score": "score"}],
                              "attributes": {"sex": {}}, "id_column": "ecg_id",
                              "patient_column": "patient_id", "intersections": "none"})
    _, gate = before_after_gate(before, after, audit(after, audit_cfg), audit_cfg,
                                default_policy(cfg), n_boot=100)
    outcome = {(o.attribute, o.group): o.outcome for o in gate.outcomes}
    if harm:
        assert outcome[("sex", "female")] == "fail"
        assert outcome[("sex", "male")] == "pass"
        assert gate.status == "fail" and gate.exit_code == 1
    else:
        assert set(outcome.values()) == {"pass"} and gate.exit_code == 0


def test_cli_finetune(tmp_path: Path) -> None:
    cfg_path = tmp_path / "finetune.yaml"
    cfg_path.write_text(yaml.safe_dump(_config("recalibrate")))
    args = ["finetune", "--model", str(MODEL), "--model-config", str(MODEL_CFG),
            "--ecgs", str(ECGS), "--metadata", str(META), "--config", str(cfg_path),
            "--out", str(tmp_path / "site")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "gate 'no-group-worse'" in res.output and "HYP" in res.output
    assert (tmp_path / "site" / "audit" / "gate.json").is_file()
    cfg_path.write_text(yaml.safe_dump(_config("recalibrate", tasks=["AFIB"])))
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    assert "task 'AFIB' is not an output of the model" in res.output
