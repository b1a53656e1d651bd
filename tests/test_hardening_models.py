"""Issue 13, class 6: model format from content, input shape checked against the model
config (expected vs got, no TorchScript traceback), non-finite weights and outputs are
errors in ``predict`` as in ``audit --model`` - through the real CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from ecgaudit.models import detect_format
from tests._hardening import MODEL_CONFIG, WEIGHTS, assert_exit2, invoke

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


@pytest.fixture(scope="module")
def ecgs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six random 12-lead ECGs of 300 samples at 100 Hz, with an index and metadata."""
    d = tmp_path_factory.mktemp("ecgs")
    rng = np.random.default_rng(0)
    np.save(d / "w.npy", rng.normal(size=(6, 12, 300)).astype(np.float32))
    (d / "w.json").write_text(json.dumps({"fs": 100, "leads": LEADS, "units": "normalised",
                                          "id_column": "ecg_id"}))
    pd.DataFrame({"ecg_id": [f"e{i}" for i in range(6)]}).to_csv(d / "w_index.csv",
                                                                 index=False)
    pd.DataFrame({"ecg_id": [f"e{i}" for i in range(6)], "y": [0, 1] * 3,
                  "sex": ["f", "m"] * 3}).to_csv(d / "meta.csv", index=False)
    return d


def _predict(ecgs: Path, model: Path, out: Path, config: Path = MODEL_CONFIG):
    return invoke(["predict", "--model", model, "--model-config", config, "--ecgs",
                   ecgs / "w.npy", "-o", out, "--threads", "1"])


def _config(tmp_path: Path, **changes: object) -> Path:
    cfg = json.loads(MODEL_CONFIG.read_text())
    cfg.update(changes)
    p = tmp_path / "model.json"
    p.write_text(json.dumps(cfg))
    return p


class _Tiny(torch.nn.Module):
    def __init__(self, leads: int, classes: int = 5, nan: bool = False) -> None:
        super().__init__()
        self.conv = torch.nn.Conv1d(leads, classes, 3)
        self.nan = nan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x).mean(dim=2)
        return out * float("nan") if self.nan else out


def _torchscript(path: Path, leads: int, nan: bool = False) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(_Tiny(leads, nan=nan)), str(path))
    return path


def test_state_dict_renamed_safetensors_is_loaded_by_content(ecgs: Path,
                                                             tmp_path: Path) -> None:
    renamed = tmp_path / "weights.safetensors"
    torch.save(load_file(str(WEIGHTS)), renamed)  # a torch.save zip under a wrong suffix
    assert detect_format(renamed) == "state_dict"
    res = _predict(ecgs, renamed, tmp_path / "p.csv")
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "p.csv")) == 6


def test_onnx_under_another_name_with_wrong_leads(ecgs: Path, tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Tiny(2).eval(), (torch.zeros(1, 2, 300),), str(path),
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}}, dynamo=False)
    assert detect_format(path) == "onnx"
    text = assert_exit2(_predict(ecgs, path, tmp_path / "p.csv"), "ONNX model 'model.bin'",
                        "(batch, 2, 300)", "expects (batch, 12 leads, 300 samples)")
    assert "Traceback" not in text
    assert not (tmp_path / "p.csv").exists()


def test_torchscript_with_wrong_input_shape_has_no_traceback(ecgs: Path,
                                                             tmp_path: Path) -> None:
    model = _torchscript(tmp_path / "ts.pt", leads=3)
    text = assert_exit2(_predict(ecgs, model, tmp_path / "p.csv"), "TorchScript model 'ts.pt'",
                        "rejects input of the configured shape",
                        "(batch, 12 leads, 300 samples)")
    assert "Traceback of TorchScript" not in text and "serialized code" not in text
    assert len(text.strip().splitlines()) == 1


def test_config_with_wrong_number_of_leads(ecgs: Path, tmp_path: Path) -> None:
    cfg = _config(tmp_path, leads=LEADS[:8])
    assert_exit2(_predict(ecgs, WEIGHTS, tmp_path / "p.csv", cfg),
                 "does not match architecture", "file (", "vs model (", "'leads'")
    model = _torchscript(tmp_path / "ts.pt", leads=12)
    assert_exit2(_predict(ecgs, model, tmp_path / "p.csv", cfg),
                 "(batch, 8 leads, 300 samples)")


def test_non_finite_weights_are_an_error_in_predict_and_audit(ecgs: Path,
                                                              tmp_path: Path) -> None:
    sd = load_file(str(WEIGHTS))
    first = next(k for k, v in sd.items() if v.is_floating_point())
    sd[first] = sd[first].clone()
    sd[first].view(-1)[0] = float("nan")
    bad = tmp_path / "nan.safetensors"
    save_file(sd, str(bad))
    assert_exit2(_predict(ecgs, bad, tmp_path / "p.csv"), "nan.safetensors",
                 "NaN or infinite weights", first)
    res = invoke(["audit", "--model", bad, "--model-config", MODEL_CONFIG, "--ecgs",
                  ecgs / "w.npy", "--metadata", ecgs / "meta.csv", "--id", "ecg_id",
                  "--label", "y", "--score", "score:MI", "--out", tmp_path / "o"])
    assert_exit2(res, "NaN or infinite weights", out=tmp_path / "o")


def test_all_nan_outputs_are_an_error_in_predict(ecgs: Path, tmp_path: Path) -> None:
    model = _torchscript(tmp_path / "nan.pt", leads=12, nan=True)
    assert_exit2(_predict(ecgs, model, tmp_path / "p.csv"), "model 'nan.pt'",
                 "NaN or infinite outputs", "6 of 6 windows")
    assert not (tmp_path / "p.csv").exists()
