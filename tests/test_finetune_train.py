"""Training strategies on a small real PTB-XL subset (fold 10, shipped in examples/ptbxl_model).

Each run uses a few batches of one or two epochs, so the file takes seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ecgaudit.errors import InputError
from ecgaudit.finetune import (
    TrainingConfig,
    TrainingDivergedError,
    state_sha256,
    train_model,
)
from ecgaudit.finetune._data import score_windows
from ecgaudit.finetune._train import epoch_order
from ecgaudit.io.waveforms import open_ecgs
from ecgaudit.models import Preprocessor, load_model, load_model_config, run_inference

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "ptbxl_model"
TASKS = ["NORM", "MI", "STTC", "CD", "HYP"]


@pytest.fixture(scope="module")
def real() -> dict[str, object]:
    cfg = load_model_config(EX / "ecgresnet_ptbxl.json")
    loaded = load_model(EX / "ecgresnet_ptbxl.safetensors", cfg)
    source = open_ecgs(EX / "waveforms_fold10.npz")
    prep = Preprocessor(cfg)
    ids, wins = [], []
    for rec in source:
        ids.append(rec.record_id)
        wins.append(prep(rec))
    meta = pd.read_csv(EX / "metadata.csv", dtype={"ecg_id": str}).set_index(  # text ids
        "ecg_id").loc[ids].reset_index()
    y = meta[[f"label_{t}" for t in TASKS]].to_numpy(dtype=np.float32)
    return {"cfg": cfg, "loaded": loaded, "x": np.stack(wins), "y": y, "meta": meta,
            "source": source}


def _fresh(real: dict[str, object]) -> torch.nn.Module:
    loaded = real["loaded"]
    module = type(loaded.module)()  # type: ignore[attr-defined]
    module.load_state_dict(loaded.module.state_dict())  # type: ignore[attr-defined]
    return module


def _run(real, strategy="full", checkpoint_dir=None, resume=False, progress=None, **kw):
    x, y = real["x"], real["y"]
    opts = {"epochs": 1, "batch_size": 16, "max_batches_per_epoch": 2, "lr": 1e-3,
            "num_threads": 1, **kw}
    model = _fresh(real)
    res = train_model(model, x[:120], y[:120], x[120:160], y[120:160], strategy=strategy,
                      config=TrainingConfig(**opts), task_index=range(5),
                      groups_train=real["meta"]["sex"].to_numpy()[:120],
                      checkpoint_dir=checkpoint_dir, resume=resume, progress=progress)
    return model, res


def _changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> set[str]:
    return {k for k in a if not torch.equal(a[k], b[k])}


def test_scoring_matches_ecgaudit_predict(real) -> None:
    ids, ref = run_inference(real["loaded"], iter(real["source"]))
    got = score_windows(real["loaded"], real["x"])
    assert list(ids) == real["meta"]["ecg_id"].tolist()
    assert got.shape == ref.shape == (194, 5)
    assert np.allclose(got, ref, atol=1e-6)


def test_same_seed_same_weights_other_seed_differs(real) -> None:
    _, a = _run(real, seed=3)
    _, b = _run(real, seed=3)
    _, c = _run(real, seed=4)
    # the kept weights must be trained ones for the comparison to mean anything
    assert a.best_epoch == 1 and c.best_epoch == 1
    a_last = state_sha256(a.state_dict)
    assert a_last == state_sha256(b.state_dict)
    assert a.history == b.history
    assert a.history[0]["train_loss"] != c.history[0]["train_loss"]
    assert state_sha256(c.state_dict) != a_last
    assert not torch.are_deterministic_algorithms_enabled()  # global flag restored


def test_head_trains_only_the_final_layer(real) -> None:
    base = {k: v.clone() for k, v in real["loaded"].module.state_dict().items()}
    model, res = _run(real, strategy="head", lr=1e-2, epochs=2)
    changed = _changed(base, model.state_dict())
    assert changed == {"head.weight", "head.bias"}  # BN running statistics untouched too
    assert res.trainable == ["head.weight", "head.bias"]


def test_full_with_frozen_stem(real) -> None:
    base = {k: v.clone() for k, v in real["loaded"].module.state_dict().items()}
    model, _ = _run(real, strategy="full", freeze=("stem",), monitor="val_auroc",
                    patience=5, epochs=1)
    changed = _changed(base, model.state_dict())
    assert not any(k.startswith("stem.") for k in changed)
    assert any(k.startswith("blocks.") for k in changed)
    with pytest.raises(InputError, match=r"training.freeze names unknown layers \['stems'\]"):
        _run(real, freeze=("stems",))


def test_head_fine_tuning_repairs_the_real_shift(real) -> None:
    _, res = _run(real, strategy="head", lr=1e-2, epochs=3, max_batches_per_epoch=None)
    best = min(h["val_loss"] for h in res.history)
    assert best < res.initial_val["val_loss"]
    assert res.best_epoch >= 1


def test_resume_equals_an_uninterrupted_run(real, tmp_path: Path) -> None:
    _, straight = _run(real, epochs=2, patience=5, checkpoint_dir=tmp_path / "a")
    _run(real, epochs=1, patience=5, checkpoint_dir=tmp_path / "b")
    _, resumed = _run(real, epochs=2, patience=5, checkpoint_dir=tmp_path / "b", resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history == straight.history
    assert state_sha256(resumed.state_dict) == state_sha256(straight.state_dict)
    with pytest.raises(InputError, match="written by a different fine-tuning run"):
        _run(real, epochs=2, lr=5e-4, checkpoint_dir=tmp_path / "b", resume=True)


def test_nan_loss_aborts_and_keeps_last_good_checkpoint(real, tmp_path: Path) -> None:
    def poison(event: dict[str, object]) -> None:
        if event["event"] == "batch" and event["epoch"] == 2 and event["batch"] == 1:
            with torch.no_grad():
                model_ref[0].head.weight.fill_(math.inf)

    model_ref: list[torch.nn.Module] = []
    x, y = real["x"], real["y"]
    model = _fresh(real)
    model_ref.append(model)
    cfg = TrainingConfig(epochs=3, batch_size=16, max_batches_per_epoch=2, lr=1e-3,
                         patience=5, num_threads=1)
    with pytest.raises(TrainingDivergedError, match=r"loss became nan at epoch 2, batch 2.*"
                                                    r"last good checkpoint \(epoch 1\)") as err:
        train_model(model, x[:120], y[:120], x[120:160], y[120:160], strategy="full",
                    config=cfg, task_index=range(5), checkpoint_dir=tmp_path, progress=poison)
    assert err.value.last_good_epoch == 1
    import json

    from safetensors.torch import load_file

    state = json.loads((tmp_path / "last.json").read_text())
    assert state["epoch"] == 1
    kept = load_file(tmp_path / "last.safetensors")
    assert all(torch.isfinite(v).all() for k, v in kept.items() if k.startswith("model."))
    bad_x = x[:40].copy()
    bad_x[:] = np.nan
    with pytest.raises(TrainingDivergedError, match="base model's weights are unchanged"):
        train_model(_fresh(real), bad_x, y[:40], x[120:160], y[120:160], strategy="full",
                    config=cfg, task_index=range(5))


def test_group_balanced_order_and_group_dro(real) -> None:
    codes = np.r_[np.zeros(900, dtype=np.intp), np.ones(100, dtype=np.intp)]
    order = epoch_order(1000, codes, torch.Generator().manual_seed(0)).numpy()
    share = codes[order].mean()
    assert abs(share - 0.5) < 0.05  # 10% minority drawn half the time
    plain = epoch_order(1000, None, torch.Generator().manual_seed(0)).numpy()
    assert sorted(plain.tolist()) == list(range(1000))
    _, res = _run(real, group_dro=True, dro_eta=1.0)
    w = res.group_weights
    assert set(w) == {"female", "male"}
    assert sum(w.values()) == pytest.approx(1.0)
    assert w["female"] != pytest.approx(0.5)
    with pytest.raises(InputError, match="need group attributes"):
        train_model(_fresh(real), real["x"][:20], real["y"][:20], real["x"][20:30],
                    real["y"][20:30], strategy="full",
                    config=TrainingConfig(sampling="group_balanced"), task_index=range(5))
