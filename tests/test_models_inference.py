"""Batched inference: the pretrained ECGResNet on real PTB-XL waveforms, determinism, joins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from sklearn.metrics import roc_auc_score

from ecgaudit.errors import InputError, JoinError
from ecgaudit.models import (
    MANIFEST_ATTR,
    ECGResNet,
    ResNet1D,
    load_model,
    load_model_config,
    predict,
    predict_detailed,
    run_inference,
)

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "ptbxl_model"
WEIGHTS, CONFIG = EX / "ecgresnet_ptbxl.safetensors", EX / "ecgresnet_ptbxl.json"
WAVES, META = EX / "waveforms_fold10.npz", EX / "metadata.csv"
CINC = ROOT / "tests" / "fixtures" / "waveforms" / "cinc2021"
CLASSES = ("NORM", "MI", "STTC", "CD", "HYP")
# ../shared/data/README.md, ptbxl_ecgresnet_model: fold-10 AUROCs measured by the data curator.
PUBLISHED_FOLD10 = {"NORM": 0.942, "MI": 0.810, "STTC": 0.911, "CD": 0.891, "HYP": 0.581}


@pytest.fixture(scope="module")
def preds() -> pd.DataFrame:
    return predict(WEIGHTS, CONFIG, WAVES, batch_size=64, threads=2, metadata=META)


def test_pretrained_ecgresnet_reproduces_published_aurocs(preds: pd.DataFrame) -> None:
    assert len(preds) == 194
    for c in CLASSES:
        auc = roc_auc_score(preds[f"label_{c}"], preds[f"score:{c}"])
        assert abs(auc - PUBLISHED_FOLD10[c]) < 0.01, (c, auc)


def test_scores_equal_a_plain_per_record_torch_loop(preds: pd.DataFrame) -> None:
    """Independent reference: numpy z-score, 5 windows, torch model, sigmoid, max."""
    net = ECGResNet().eval()
    net.load_state_dict(load_file(str(WEIGHTS)))
    with np.load(WAVES) as z:
        x = z["signals"].astype(np.float64)
    ids = pd.read_csv(EX / "waveforms_fold10_index.csv")["ecg_id"].to_numpy()
    n = 40  # a subset keeps this unbatched loop fast
    ref = np.empty((n, 5))
    with torch.no_grad():
        for i in range(n):
            xi = (x[i] - x[i].mean(1, keepdims=True)) / x[i].std(1, keepdims=True)
            wins = np.stack([xi[:, s:s + 300] for s in (0, 150, 300, 450, 600)])
            ref[i] = torch.sigmoid(net(torch.tensor(wins, dtype=torch.float32))).max(0).values
    assert preds["ecg_id"].tolist() == [str(i) for i in ids]  # ids are text (issue 13)
    got = preds[[f"score:{c}" for c in CLASSES]].to_numpy()[:n]
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5)


def test_output_columns_and_manifest(preds: pd.DataFrame) -> None:
    meta = pd.read_csv(META)
    assert list(preds.columns) == list(meta.columns) + [f"score:{c}" for c in CLASSES]
    # ids are read as text (issue 13); every other column is exactly the metadata file's
    pd.testing.assert_frame_equal(preds[meta.columns].astype({"ecg_id": "int64"}), meta)
    man = preds.attrs[MANIFEST_ATTR]
    assert man["model"]["format"] == "safetensors" and man["ecgs"]["n_records"] == 194
    assert [s["step"] for s in man["preprocessing"]] == [
        "z-score each lead (per record)", "windows of 300 samples every 150, max over windows"]
    assert all(s["records"] == 194 for s in man["preprocessing"])
    text = json.dumps(man)
    assert str(ROOT) not in text  # no user paths in the manifest


def test_deterministic_and_batch_size_invariant() -> None:
    a = predict(WEIGHTS, CONFIG, WAVES, batch_size=37, threads=1)
    b = predict(WEIGHTS, CONFIG, WAVES, batch_size=37, threads=1)
    assert a.to_csv(index=False) == b.to_csv(index=False)
    c = predict(WEIGHTS, CONFIG, WAVES, batch_size=1, threads=1)
    np.testing.assert_allclose(a.iloc[:, 1:].to_numpy(), c.iloc[:, 1:].to_numpy(), atol=1e-5)
    assert list(a.columns) == ["ecg_id"] + [f"score:{c}" for c in CLASSES]


def test_threads_are_restored_and_progress_reported() -> None:
    before = torch.get_num_threads()
    calls: list[tuple[int, int]] = []
    predict(WEIGHTS, CONFIG, WAVES, batch_size=100, threads=1,
            progress=lambda d, t: calls.append((d, t)))
    assert torch.get_num_threads() == before
    # 194 records x 5 windows, >= 100 windows per batch -> 20 records per batch, then 14.
    assert calls[-1] == (194, 194)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert len(calls) == 10


def test_metadata_join_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = pd.read_csv(META)
    meta.iloc[1:].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(JoinError, match=r"1 ECGs have no row in metadata 'short.csv'.*hidden"):
        predict(WEIGHTS, CONFIG, WAVES, metadata=tmp_path / "short.csv")
    monkeypatch.setenv("ECGAUDIT_SHOW_IDS", "1")
    with pytest.raises(JoinError, match=r"1 ECGs have no row in metadata 'short.csv'.*'9'"):
        predict(WEIGHTS, CONFIG, WAVES, metadata=tmp_path / "short.csv")
    monkeypatch.delenv("ECGAUDIT_SHOW_IDS")
    meta.rename(columns={"ecg_id": "id"}).to_csv(tmp_path / "noid.csv", index=False)
    with pytest.raises(JoinError, match="has no 'ecg_id' column"):
        predict(WEIGHTS, CONFIG, WAVES, metadata=tmp_path / "noid.csv")
    # Extra metadata rows (ECGs not scored) are dropped.
    extra = pd.concat([meta, meta.iloc[:1].assign(ecg_id=999999)])
    extra.to_csv(tmp_path / "extra.csv", index=False)
    out = predict(WEIGHTS, CONFIG, WAVES, metadata=tmp_path / "extra.csv")
    assert len(out) == 194 and 999999 not in set(out["ecg_id"])


def _random_resnet(tmp_path: Path) -> tuple[Path, Path]:
    torch.manual_seed(0)
    net = ResNet1D(n_leads=12, n_classes=2, widths=(16, 32), blocks_per_stage=1).eval()
    torch.save(net.state_dict(), tmp_path / "r.pt")
    cfg = {"architecture": "resnet1d", "architecture_params": {"widths": [16, 32],
           "blocks_per_stage": 1}, "fs": 100, "units": "mV", "classes": ["X", "Y"],
           "leads": ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"],
           "id_column": "record", "output_activation": "softmax",
           "preprocessing": {"resample": True, "bandpass": {"low": 0.5, "high": 40},
                             "zscore": True},
           "window": {"length": 500, "stride": 250, "aggregate": "mean"}}
    (tmp_path / "r.json").write_text(json.dumps(cfg))
    return tmp_path / "r.pt", tmp_path / "r.json"


def test_challenge_wfdb_records_end_to_end(tmp_path: Path) -> None:
    pt, js = _random_resnet(tmp_path)
    res = predict_detailed(pt, js, CINC, header_demographics=True, batch_size=8)
    df = res.frame
    assert df["record"].tolist() == ["E07500", "E07501", "HR06000", "HR06001", "JS20000",
                                     "JS20001"]
    assert df["age"].tolist() == [78.0, 65.0, 59.0, 78.0, 84.0, 77.0]
    assert df["sex"].tolist() == ["male", "male", "female", "female", "female", "male"]
    np.testing.assert_allclose(df["score:X"] + df["score:Y"], 1.0, atol=1e-9)  # softmax
    assert res.manifest["preprocessing"][0]["step"].startswith("resample 500 -> 100 Hz")
    assert res.manifest["ecgs"] == {"format": "wfdb", "name": "cinc2021", "n_records": 6}


def test_wrong_fs_without_resampling_names_record(tmp_path: Path) -> None:
    pt, js = _random_resnet(tmp_path)
    cfg = json.loads(js.read_text())
    cfg["preprocessing"]["resample"] = False
    js.write_text(json.dumps(cfg))
    with pytest.raises(InputError, match=r"ECG 'E07500' \(E07500.hea\): sampling rate mismatch"):
        predict(pt, js, CINC)


def test_run_inference_with_loaded_model_and_bad_batch_size() -> None:
    cfg = load_model_config(CONFIG)
    model = load_model(WEIGHTS, cfg)
    from ecgaudit.io.waveforms import open_ecgs

    ids, scores = run_inference(model, open_ecgs(WAVES), batch_size=512)
    assert len(ids) == 194 and scores.shape == (194, 5)
    assert ((scores > 0) & (scores < 1)).all()
    with pytest.raises(InputError, match="batch size must be a positive integer"):
        run_inference(model, open_ecgs(WAVES), batch_size=0)


def test_hdf5_and_wfdb_inputs_give_the_same_scores(tmp_path: Path) -> None:
    import h5py

    from ecgaudit.io.waveforms import read_wfdb_record

    pt, js = _random_resnet(tmp_path)
    names = ["E07500", "HR06000", "JS20000"]
    recs = [read_wfdb_record(CINC / f"{n}.hea") for n in names]
    with h5py.File(tmp_path / "code.h5", "w") as f:
        f.create_dataset("tracings", data=np.stack([r.signal.T for r in recs]))
        f.create_dataset("exam_id", data=np.array(names, dtype="S"))
        f.attrs["fs"], f.attrs["units"] = 500.0, "mV"
    from_h5 = predict(pt, js, tmp_path / "code.h5")
    from_wfdb = predict(pt, js, CINC)
    from_wfdb = from_wfdb[from_wfdb["record"].isin(names)].reset_index(drop=True)
    assert from_h5["record"].tolist() == names  # byte-string exam ids decoded
    np.testing.assert_allclose(from_h5.iloc[:, 1:].to_numpy(), from_wfdb.iloc[:, 1:].to_numpy(),
                               rtol=0, atol=1e-6)
