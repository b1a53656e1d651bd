"""`ecgaudit audit --model` equals `ecgaudit predict` followed by `ecgaudit audit`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from ecgaudit.cli import app

EX = Path(__file__).resolve().parents[1] / "examples" / "ptbxl_model"
MODEL = ["--model", str(EX / "ecgresnet_ptbxl.safetensors"),
         "--model-config", str(EX / "ecgresnet_ptbxl.json"),
         "--ecgs", str(EX / "waveforms_fold10.npz")]


def test_audit_model_equals_predict_then_audit(tmp_path):
    runner = CliRunner()
    preds = tmp_path / "preds.parquet"
    r = runner.invoke(app, ["predict", *MODEL, "-o", str(preds)])
    assert r.exit_code == 0, r.output
    common = ["--metadata", str(EX / "metadata.csv"), "--config", str(EX / "audit.yaml"),
              "--no-report"]
    r = runner.invoke(app, ["audit", str(preds), *common, "--out", str(tmp_path / "two")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["audit", *MODEL, *common, "--out", str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    a = pd.read_csv(tmp_path / "one" / "metrics.csv")
    b = pd.read_csv(tmp_path / "two" / "metrics.csv")
    pd.testing.assert_frame_equal(a, b)
    man = json.loads((tmp_path / "one" / "results.json").read_text())["manifest"]
    assert len(man["inference"]["model"]["sha256"]) == 64
    assert man["inference"]["n_scored"] == 194
    assert {i["role"] for i in man["inputs"]} == {"predictions", "metadata"}


def test_audit_model_needs_all_three_options(tmp_path):
    r = CliRunner().invoke(app, ["audit", "--model", MODEL[1], "--config",
                                 str(EX / "audit.yaml"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "--model-config" in r.output and "Traceback" not in r.output
