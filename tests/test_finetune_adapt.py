"""strategy: adapt - DANN / Deep CORAL, label-free target, errors, before/after audit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from ecgaudit.cli import app
from ecgaudit.errors import ConfigError
from ecgaudit.finetune import TrainingConfig, parse_finetune_config, state_sha256
from ecgaudit.finetune._adapt import feature_coral_distance, train_adapted
from ecgaudit.finetune._fedconfig import AdaptConfig
from ecgaudit.pipeline._adapt import _splits
from ecgaudit.pipeline._fedadapt import group_column, prepare

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "ptbxl_model"
MODEL, MODEL_CFG = EX / "ecgresnet_ptbxl.safetensors", EX / "ecgresnet_ptbxl.json"
ECGS, META = EX / "waveforms_fold10.npz", EX / "metadata.csv"


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 6, 5)
        self.head = nn.Linear(6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).mean(dim=2))


def _domain(seed: int, n: int, gain: float, offset: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=(n, 1)).astype(np.float32)
    x = rng.normal(size=(n, 1, 2, 30)).astype(np.float32)
    x[:, 0, 0, :] += y * 2.0
    return (x * gain + offset).astype(np.float32), y


def _run(method: str, weight: float, seed: int = 0) -> tuple[nn.Module, dict[str, float]]:
    torch.manual_seed(0)
    m = _Tiny()
    xs, ys = _domain(1, 48, 1.0, 0.0)
    xv, yv = _domain(2, 16, 1.0, 0.0)
    xt, _ = _domain(3, 48, 3.0, 1.0)  # planted acquisition shift: gain 3, offset 1
    cfg = TrainingConfig(epochs=6, lr=5e-3, batch_size=8, num_threads=1, seed=seed,
                         patience=10)
    res = train_adapted(m, xs, ys, xv, yv, xt, adapt=AdaptConfig(target="t", method=method,
                                                                  weight=weight,
                                                                  selection="last"),
                        config=cfg, task_index=[0])
    return m, {"gap": feature_coral_distance(m, "head", xv, xt),
               "sha": state_sha256(res.state_dict), "best": res.best_epoch}  # type: ignore


def test_coral_shrinks_the_planted_feature_covariance_gap() -> None:
    _, plain = _run("coral", 0.0)
    _, coral = _run("coral", 50.0)
    assert coral["gap"] < 0.5 * plain["gap"]


def test_coral_distance_matches_a_numpy_closed_form() -> None:
    torch.manual_seed(0)
    m = _Tiny()
    xa, _ = _domain(1, 10, 1.0, 0.0)
    xb, _ = _domain(2, 12, 2.0, 0.5)
    feats = []
    h = m.head.register_forward_hook(lambda _m, i, _o: feats.append(i[0].detach()))
    with torch.no_grad():
        for x in (xa, xb):
            m(torch.as_tensor(x.reshape(-1, 2, 30)))
    h.remove()
    fa, fb = (f.double().numpy() for f in feats)
    d = fa.shape[1]
    ref = ((np.cov(fa, rowvar=False) - np.cov(fb, rowvar=False)) ** 2).sum() / (4 * d * d)
    assert feature_coral_distance(m, "head", xa, xb) == pytest.approx(ref, rel=1e-6)


def test_dann_is_deterministic_and_differs_from_coral() -> None:
    a, b, c = _run("dann", 1.0)[1], _run("dann", 1.0)[1], _run("dann", 1.0, seed=1)[1]
    assert a["sha"] == b["sha"] != c["sha"]
    assert a["sha"] != _run("coral", 1.0)[1]["sha"]


def test_too_few_target_ecgs_is_an_input_error() -> None:
    xs, ys = _domain(1, 8, 1.0, 0.0)
    with pytest.raises(Exception, match="at least 2 unlabelled target"):
        train_adapted(_Tiny(), xs, ys, xs, ys, xs[:1], adapt=AdaptConfig(target="t"),
                      config=TrainingConfig(num_threads=1), task_index=[0])


def test_config_needs_an_adapt_section() -> None:
    with pytest.raises(ConfigError, match="adapt"):
        parse_finetune_config({"strategy": "adapt", "tasks": ["NORM"]})
    cfg = parse_finetune_config({"strategy": "adapt", "tasks": ["NORM"],
                                 "adapt": {"target": "2", "method": "coral"}})
    assert cfg.adapt is not None and cfg.adapt.selection == "source_val_loss"


def _cfg(tmp_path: Path, **ad: object) -> Path:
    data = {"strategy": "adapt", "tasks": ["NORM", "CD"], "attributes": {"sex": {}},
            "split": {"seed": 0, "stratify": ["sex"]},
            "min_positives": {"train": 2, "val": 1, "test": 1},
            "training": {"epochs": 2, "batch_size": 8, "max_batches_per_epoch": 1, "lr": 1e-3,
                         "num_threads": 1},
            "adapt": {"domain_column": "site", "target": "2", "source": ["0", "1"], **ad},
            "gate": {"n_boot": 100}, "audit": {"intersections": "none"}}
    p = tmp_path / "adapt.yaml"
    p.write_text(json.dumps(data))
    return p


def _cli(cfg: Path, out: Path, meta: Path = META) -> object:
    return CliRunner().invoke(app, ["finetune", "--model", str(MODEL), "--model-config",
                                    str(MODEL_CFG), "--ecgs", str(ECGS), "--metadata",
                                    str(meta), "--config", str(cfg), "--out", str(out),
                                    "--no-fail-on-gate"])


def test_target_with_no_ecgs_exits_2(tmp_path: Path) -> None:
    res = _cli(_cfg(tmp_path, target="42"), tmp_path / "o")
    assert res.exit_code == 2, res.output
    assert "no ECGs of the adaptation target" in res.output and "'42'" in res.output
    res = _cli(_cfg(tmp_path, domain_column="hospital"), tmp_path / "o")
    assert res.exit_code == 2 and "hospital" in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_target_labels_never_reach_training_or_selection(tmp_path: Path) -> None:
    """Flipping the adaptation pool's labels changes nothing: not the weights, not the audit."""
    out_a = tmp_path / "a"
    res = _cli(_cfg(tmp_path), out_a)
    assert res.exit_code == 0, res.output
    split = pd.read_csv(out_a / "split.csv")
    assert set(split.split) == {"source_train", "source_val", "target_pool", "target_test",
                                "excluded"}
    meta = pd.read_csv(META)
    pool = meta.ecg_id.isin(split.loc[split.split == "target_pool", "ecg_id"])
    flipped = meta.copy()
    for c in ("label_NORM", "label_MI", "label_STTC", "label_CD", "label_HYP"):
        flipped.loc[pool, c] = 1 - flipped.loc[pool, c]
    p = tmp_path / "meta_flipped.csv"
    flipped.to_csv(p, index=False)
    res = _cli(_cfg(tmp_path), tmp_path / "b", meta=p)
    assert res.exit_code == 0, res.output
    man_a = json.loads((out_a / "manifest.json").read_text())
    man_b = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert man_a["weights_sha256"] == man_b["weights_sha256"]
    assert man_a["training"]["history"] == man_b["training"]["history"]
    for f in ("summary.json", "comparison.csv", "gate.json"):
        assert (out_a / "audit" / f).read_bytes() == (tmp_path / "b" / "audit" / f).read_bytes()
    # the audit judged only held-out target patients, never pool or source patients
    test_ids = split.loc[split.split == "target_test", "ecg_id"]
    assert set(meta.loc[meta.ecg_id.isin(test_ids), "site"]) == {2}
    pool_p = set(meta.loc[pool, "patient_id"])
    assert not pool_p & set(meta.loc[meta.ecg_id.isin(test_ids), "patient_id"])
    after = pd.read_csv(out_a / "audit" / "after" / "metrics.csv")
    row = after[(after.task == "NORM") & (after.attribute == "overall")
                & (after.metric == "auroc")]
    assert int(row.n.iloc[0]) == len(test_ids)
    assert man_a["training"]["method"] == "dann"


def test_unlabelled_target_records_are_accepted_and_go_to_the_pool(tmp_path: Path) -> None:
    meta = pd.read_csv(META)
    site2 = meta.index[meta.site == 2]
    gone = site2[::3]
    for c in ("label_NORM", "label_CD"):
        meta[c] = meta[c].astype("Float64")
        meta.loc[gone, c] = pd.NA
    p = tmp_path / "meta.csv"
    meta.to_csv(p, index=False)
    cfg = parse_finetune_config(json.loads(_cfg(tmp_path).read_text()))
    prep = prepare(MODEL, MODEL_CFG, ECGS, p, cfg, None)
    labels, info = _splits(prep, group_column(prep.site, "site", "domain"))
    assert info["target_records_without_labels"] == len(gone)
    assert set(labels[gone]) == {"target_pool"}
    assert (labels == "target_test").sum() > 0
    assert set(labels[meta.site.isin([0, 1]).to_numpy()]) <= {"source_train", "source_val"}
    # empty labels outside the target are still an error
    meta.loc[meta.index[meta.site == 0][:1], "label_NORM"] = pd.NA
    meta.to_csv(p, index=False)
    with pytest.raises(Exception, match="not 0/1"):
        prepare(MODEL, MODEL_CFG, ECGS, p, cfg, None)


def test_resumed_adaptation_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    xs, ys = _domain(1, 32, 1.0, 0.0)
    xv, yv = _domain(2, 12, 1.0, 0.0)
    xt, _ = _domain(3, 32, 3.0, 1.0)
    ad = AdaptConfig(target="t", method="dann", selection="last")
    cfg = TrainingConfig(epochs=3, lr=5e-3, batch_size=8, num_threads=1)

    class InterruptedRunError(Exception):
        pass

    def stop_after_first(event: dict[str, object]) -> None:
        if event["epoch"] == 1:
            raise InterruptedRunError

    def fit(folder: Path, resume: bool = False, progress: object = None) -> str:
        torch.manual_seed(0)
        res = train_adapted(_Tiny(), xs, ys, xv, yv, xt, adapt=ad, config=cfg,
                            task_index=[0], checkpoint_dir=folder, resume=resume,
                            progress=progress)  # type: ignore[arg-type]
        assert [h["epoch"] for h in res.history] == [1, 2, 3]
        return state_sha256(res.state_dict)

    full = fit(tmp_path / "a")
    with pytest.raises(InterruptedRunError):
        fit(tmp_path / "b", progress=stop_after_first)
    assert fit(tmp_path / "b", resume=True) == full
    with pytest.raises(Exception, match="different"):
        train_adapted(_Tiny(), xs, ys, xv, yv, xt[:20], adapt=ad, config=cfg,
                      task_index=[0], checkpoint_dir=tmp_path / "b", resume=True)


def test_weight_zero_is_a_source_only_baseline_independent_of_the_target() -> None:
    xs, ys = _domain(1, 24, 1.0, 0.0)
    xv, yv = _domain(2, 8, 1.0, 0.0)
    shas = []
    for gain in (1.0, 5.0):
        xt, _ = _domain(3, 24, gain, 2.0)
        torch.manual_seed(0)
        res = train_adapted(_Tiny(), xs, ys, xv, yv, xt,
                            adapt=AdaptConfig(target="t", method="dann", weight=0.0,
                                              selection="last"),
                            config=TrainingConfig(epochs=2, lr=5e-3, batch_size=8,
                                                  num_threads=1), task_index=[0])
        shas.append(state_sha256(res.state_dict))
    assert shas[0] == shas[1]
    _, adapted = _run("dann", 1.0)
    assert adapted["sha"] != shas[0]
