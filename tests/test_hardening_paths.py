"""Issue 13, classes 1 and 8: paths inside files stay in their folder, file content and
record identifiers never reach messages unless asked - through the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgaudit.errors import InputError
from ecgaudit.io.waveforms import NumpySource
from tests._hardening import (
    AUDIT_FLAGS,
    MODEL_CONFIG,
    WEIGHTS,
    assert_exit2,
    good_frame,
    invoke,
)

SECRET = "root:$6$SECRETHASH:19000:0:99999:7:::"


@pytest.fixture()
def arrays(tmp_path: Path) -> Path:
    """``ecgs/w.npy`` (4 ECGs, 12 leads, 300 samples) and a sidecar without an index."""
    d = tmp_path / "ecgs"
    d.mkdir()
    np.save(d / "w.npy", np.zeros((4, 12, 300), dtype=np.float32))
    side = {"fs": 100, "leads": ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3",
                                 "V4", "V5", "V6"], "units": "mV", "id_column": "ecg_id"}
    (d / "w.json").write_text(json.dumps(side))
    outside = tmp_path / "x"
    outside.mkdir()
    pd.DataFrame({"ecg_id": ["P-0001", "P-0002", "P-0003", "P-0004"]}).to_csv(
        outside / "patients.csv", index=False)
    (outside / "shadow").write_text(SECRET + "\n")
    return d


def _sidecar(d: Path, **keys: object) -> None:
    side = json.loads((d / "w.json").read_text())
    side.update(keys)
    (d / "w.json").write_text(json.dumps(side))


def _predict(d: Path, out: Path, env: dict[str, str] | None = None):
    return invoke(["predict", "--model", WEIGHTS, "--model-config", MODEL_CONFIG, "--ecgs",
                   d / "w.npy", "-o", out, "--threads", "1"], env=env)


@pytest.mark.parametrize("index", ["../x/patients.csv", "{abs}/x/shadow", "/etc/passwd"])
def test_sidecar_index_outside_its_folder_is_refused(arrays: Path, tmp_path: Path,
                                                     index: str) -> None:
    _sidecar(arrays, index=index.format(abs=tmp_path))
    res = _predict(arrays, tmp_path / "p.csv")
    assert_exit2(res, "w.json", "key 'index'", "outside the folder", "ECGAUDIT_ALLOW_EXTERNAL",
                 absent=("P-0001", "SECRETHASH", "root:"))
    assert not (tmp_path / "p.csv").exists()


def test_symlink_leading_out_of_the_folder_is_refused(arrays: Path, tmp_path: Path) -> None:
    os.symlink(tmp_path / "x" / "patients.csv", arrays / "w_index.csv")
    _sidecar(arrays, index="w_index.csv")
    res = _predict(arrays, tmp_path / "p.csv")
    assert_exit2(res, "key 'index'", "outside the folder", absent=("P-0001",))


def test_explicit_opt_in_allows_an_outside_index(arrays: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="outside the folder"):
        NumpySource(arrays / "w.npy", index="../x/patients.csv")
    monkeypatch.setenv("ECGAUDIT_ALLOW_EXTERNAL_PATHS", "1")
    src = NumpySource(arrays / "w.npy", index="../x/patients.csv")
    assert list(src.ids) == ["P-0001", "P-0002", "P-0003", "P-0004"]


def test_index_ids_are_text(arrays: Path) -> None:
    pd.DataFrame({"row": [0, 1, 2, 3], "ecg_id": ["00001", "1", "007", "7"]}).to_csv(
        arrays / "w_index.csv", index=False)
    assert list(NumpySource(arrays / "w.npy").ids) == ["00001", "1", "007", "7"]


def test_index_that_is_not_an_index_is_not_echoed(arrays: Path, tmp_path: Path) -> None:
    (arrays / "w_index.csv").write_text(SECRET + "\n" + SECRET + "\n")
    res = _predict(arrays, tmp_path / "p.csv")
    assert_exit2(res, "index file 'w_index.csv'", "no identifier column 'ecg_id'",
                 absent=("SECRETHASH", "root:"))


def test_broken_sidecar_and_yaml_are_not_echoed(arrays: Path, tmp_path: Path) -> None:
    (arrays / "w.json").write_text("{" + SECRET)
    res = _predict(arrays, tmp_path / "p.csv")
    assert_exit2(res, "sidecar 'w.json' is not valid JSON", absent=("SECRETHASH",))
    cfg = tmp_path / "audit.yaml"
    cfg.write_text(f"tasks:\n  - name: t\n    label: y\n   score: {SECRET}\n")
    good_frame().to_csv(tmp_path / "preds.csv", index=False)
    res = invoke(["audit", tmp_path / "preds.csv", "--config", cfg, "--out", tmp_path / "o"])
    assert_exit2(res, "audit.yaml", "not valid YAML", "line 4", absent=("SECRETHASH",),
                 out=tmp_path / "o")


def test_duplicate_ids_name_rows_and_hide_ids_unless_asked(tmp_path: Path) -> None:
    f = good_frame()
    f["ecg_id"] = [f"P{i}" for i in f["ecg_id"]]
    f.loc[7, "ecg_id"] = "PATIENT-42"
    f.loc[30, "ecg_id"] = "PATIENT-42"
    f.to_csv(tmp_path / "preds.csv", index=False)
    args = ["audit", tmp_path / "preds.csv", *AUDIT_FLAGS, "--id", "ecg_id",
            "--out", tmp_path / "o"]
    text = assert_exit2(invoke(args), "preds.csv", "column 'ecg_id'", "rows 8, 31",
                        "duplicate id", "ECGAUDIT_SHOW_IDS=1", out=tmp_path / "o")
    assert "PATIENT-42" not in text
    assert_exit2(invoke(args, env={"ECGAUDIT_SHOW_IDS": "1"}), "'PATIENT-42'", "rows 8, 31")


def test_waveform_duplicate_ids_are_hidden(arrays: Path, tmp_path: Path) -> None:
    pd.DataFrame({"ecg_id": ["MRN-1", "MRN-2", "MRN-1", "MRN-3"]}).to_csv(
        arrays / "w_index.csv", index=False)
    text = assert_exit2(_predict(arrays, tmp_path / "p.csv"), "record identifiers must be "
                        "unique", "records 3", "ECGAUDIT_SHOW_IDS=1")
    assert "MRN-1" not in text
    shown = _predict(arrays, tmp_path / "p.csv", env={"ECGAUDIT_SHOW_IDS": "1"})
    assert_exit2(shown, "'MRN-1'")
