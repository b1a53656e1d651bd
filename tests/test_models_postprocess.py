"""A fine-tuned (recalibrated) export scores through ``ecgaudit.models`` with its recalibration.

Real runs of ``finetune_and_audit`` (strategy ``recalibrate``) on the shipped PTB-XL example
(194 real ECGs); the scores of ``predict`` on the exported model are checked against
finetune's own after-audit, its fitted maps, and independent computations (closed-form
sigmoid, scikit-learn ``IsotonicRegression`` refitted on the same rows).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from typer.testing import CliRunner

from ecgaudit.cli import app
from ecgaudit.errors import ConfigError, InputError
from ecgaudit.finetune import Recalibrator, export_site_model, fit_group_thresholds
from ecgaudit.io.waveforms import open_ecgs
from ecgaudit.models import (
    Preprocessor,
    apply_postprocess,
    load_model,
    load_model_config,
    parse_model_config,
    predict,
    recalibration_map,
)
from ecgaudit.pipeline._finetune import finetune_and_audit

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "ptbxl_model"
MODEL, MODEL_CFG = EX / "ecgresnet_ptbxl.safetensors", EX / "ecgresnet_ptbxl.json"
ECGS, META = EX / "waveforms_fold10.npz", EX / "metadata.csv"
TASKS = ["NORM", "MI", "STTC", "CD", "HYP"]
COLS = [f"score:{t}" for t in TASKS]
METHODS = ["platt", "temperature", "isotonic"]


def _finetune_config(method: str) -> dict[str, Any]:
    return {
        "strategy": "recalibrate", "tasks": TASKS, "recalibration": {"method": method},
        "attributes": {"age": {"kind": "age"}, "sex": {}},
        "split": {"seed": 0, "stratify": ["sex"]},
        "min_positives": {"train": 3, "val": 1, "test": 1},
        "gate": {"n_boot": 100, "on_inconclusive": "warn"},
        "audit": {"intersections": "none"},
    }


def _scores(frame: pd.DataFrame) -> np.ndarray:
    return frame.set_index("ecg_id").loc[:, COLS].to_numpy(dtype=np.float64)


@pytest.fixture(scope="module")
def meta() -> pd.DataFrame:
    return pd.read_csv(META, dtype={"ecg_id": str})  # ecgaudit reads ids as text


@pytest.fixture(scope="module")
def parent() -> pd.DataFrame:
    return predict(MODEL, MODEL_CFG, ECGS, threads=1)


Run = tuple[str, Path, Any]


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Run]:
    """Real ``finetune_and_audit`` runs (strategy recalibrate), one per method, cached."""
    runs: dict[str, Run] = {}

    def run(method: str) -> Run:
        if method not in runs:
            out = tmp_path_factory.mktemp(f"site_{method}")
            outcome = finetune_and_audit(MODEL, MODEL_CFG, ECGS, META,
                                         _finetune_config(method), out)
            runs[method] = (method, out, outcome)
        return runs[method]

    return run


def _closed_form(method: str, params: dict[str, Any], p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    z = np.log(q / (1 - q))
    eta = params["a"] * z + params["b"] if method == "platt" else z / params["temperature"]
    return 1.0 / (1.0 + np.exp(-eta))


@pytest.mark.parametrize("method", METHODS)
def test_predict_on_export_gives_finetunes_recalibrated_scores(
    method: str, finetuned: Callable[[str], Run], parent: pd.DataFrame, meta: pd.DataFrame
) -> None:
    _, out, outcome = finetuned(method)
    model_json = json.loads((out / "model.json").read_text())
    post = json.loads((out / "postprocess.json").read_text())
    section = model_json["postprocess"]["recalibration"]
    assert section == post["recalibration"]
    assert {t: m["method"] for t, m in section.items()} == dict.fromkeys(TASKS, method)

    preds = predict(out / "model.safetensors", out / "model.json", ECGS, threads=1)
    new, raw = _scores(preds), _scores(parent)
    ids = preds["ecg_id"].to_numpy()
    assert preds.attrs["ecgaudit_inference"]["postprocess"]["recalibrated"] == \
        dict.fromkeys(COLS, method)
    assert np.max(np.abs(new - raw)) > 1e-3  # the export does not give the parent's scores

    # 1. finetune's fitted maps (its own API) applied to the parent's scores
    for j, t in enumerate(TASKS):
        mapped = Recalibrator.from_dict(post["recalibration"][t]).transform(raw[:, j])
        np.testing.assert_allclose(new[:, j], mapped, rtol=0, atol=1e-9)

    # 2. independent computation of the same maps
    labels = meta.set_index("ecg_id").loc[ids]
    split = pd.read_csv(out / "split.csv", dtype={"ecg_id": str}).set_index("ecg_id").loc[ids, "split"].to_numpy()
    fit = split != "test"  # recalibrate fits on train + val
    for j, t in enumerate(TASKS):
        if method == "isotonic":
            y = labels[f"label_{t}"].to_numpy()
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            expected = iso.fit(raw[fit, j], y[fit]).predict(raw[:, j])
        else:
            expected = _closed_form(method, section[t]["params"], raw[:, j])
        np.testing.assert_allclose(new[:, j], expected, rtol=0, atol=1e-9)

    # 3. the scores finetune audited as "after" on the held-out patients are these scores
    test = split == "test"
    m = outcome.after.metrics
    b = outcome.before.metrics
    for j, t in enumerate(TASKS):
        y = labels[f"label_{t}"].to_numpy()[test]
        sel = (m.task == t) & (m.attribute == "overall") & (m.metric == "brier")
        after_brier = m.loc[sel, "estimate"].iloc[0]
        assert after_brier == pytest.approx(brier_score_loss(y, new[test, j]), abs=1e-9)
        before = b.loc[(b.task == t) & (b.attribute == "overall") & (b.metric == "brier"),
                       "estimate"].iloc[0]
        assert before == pytest.approx(brier_score_loss(y, raw[test, j]), abs=1e-9)
        assert abs(after_brier - before) > 1e-6


def test_parent_and_switched_off_postprocessing_give_raw_scores(
    finetuned: Callable[[str], Run], parent: pd.DataFrame
) -> None:
    _, out, _ = finetuned("platt")
    # raw scores by a forward pass written here: sigmoid of the logits, max over windows
    cfg = load_model_config(MODEL_CFG)
    net = load_model(MODEL, cfg).module
    prep = Preprocessor(cfg)
    recs = list(open_ecgs(ECGS))
    windows = np.stack([prep(r) for r in recs])
    with torch.inference_mode():
        logits = net(torch.from_numpy(windows.reshape(-1, *windows.shape[2:]))).double()
    raw = (1.0 / (1.0 + np.exp(-logits.numpy()))).reshape(len(recs), windows.shape[1], -1)
    np.testing.assert_allclose(_scores(parent), raw.max(axis=1), rtol=0, atol=1e-6)
    man = parent.attrs["ecgaudit_inference"]
    assert man["postprocess"] == {"recalibrated": {}, "not_applied": {}, "notes": []}
    assert "postprocess" not in man["model_config"]

    off = predict(out / "model.safetensors", out / "model.json", ECGS, threads=1,
                  postprocess=False)
    assert np.array_equal(_scores(off), _scores(parent))
    note = off.attrs["ecgaudit_inference"]["postprocess"]
    assert note["recalibrated"] == {}
    assert note["not_applied"]["recalibration"] == dict.fromkeys(COLS, "platt")
    assert "switched off by the caller" in note["notes"][0]


def test_cli_predict_and_audit_model_apply_the_recalibration(
    finetuned: Callable[[str], Run], meta: pd.DataFrame, tmp_path: Path
) -> None:
    _, out, _ = finetuned("temperature")
    model = ["--model", str(out / "model.safetensors"), "--model-config",
             str(out / "model.json"), "--ecgs", str(ECGS)]
    runner = CliRunner()
    r = runner.invoke(app, ["predict", *model, "-o", str(tmp_path / "p.parquet"),
                            "--threads", "1"])
    assert r.exit_code == 0, r.output
    table = pd.read_parquet(tmp_path / "p.parquet")
    lib = predict(out / "model.safetensors", out / "model.json", ECGS, threads=1)
    np.testing.assert_allclose(_scores(table), _scores(lib), rtol=0, atol=1e-12)
    man = json.loads((tmp_path / "p.parquet.manifest.json").read_text())
    assert man["postprocess"]["recalibrated"]["score:HYP"] == "temperature"

    r = runner.invoke(app, ["audit", *model, "--metadata", str(META), "--config",
                            str(EX / "audit.yaml"), "--no-report", "--out",
                            str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    metrics = pd.read_csv(tmp_path / "a" / "metrics.csv")
    joined = meta.merge(table, on="ecg_id")
    for t in TASKS:
        row = metrics[(metrics.task == t) & (metrics.attribute == "overall")]
        brier = row.loc[row.metric == "brier", "estimate"].iloc[0]
        assert brier == pytest.approx(
            brier_score_loss(joined[f"label_{t}"], joined[f"score:{t}"]), abs=1e-9)
        auroc = row.loc[row.metric == "auroc", "estimate"].iloc[0]
        assert auroc == pytest.approx(
            roc_auc_score(joined[f"label_{t}"], joined[f"score:{t}"]), abs=1e-12)


def test_a_recalibrated_export_cannot_be_fine_tuned_again(
    finetuned: Callable[[str], Run], tmp_path: Path
) -> None:
    _, out, _ = finetuned("isotonic")
    with pytest.raises(ConfigError, match=r"model config 'model.json' already has a "
                                          r"'postprocess' section"):
        finetune_and_audit(out / "model.safetensors", out / "model.json", ECGS, META,
                           _finetune_config("platt"), tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_group_thresholds_are_recorded_not_applied(parent: pd.DataFrame,
                                                   meta: pd.DataFrame,
                                                   tmp_path: Path) -> None:
    labels = meta.set_index("ecg_id").loc[parent["ecg_id"]]
    rule = fit_group_thresholds(parent["score:NORM"], labels["label_NORM"], labels["sex"],
                                attribute="sex", grid_size=200)
    cfg = load_model_config(MODEL_CFG)
    export_site_model(tmp_path, state_dict=load_file(MODEL), model_config=cfg.to_dict(),
                      manifest={}, postprocess={"group_thresholds": {"NORM": rule.to_dict()}})
    assert "group_thresholds" in json.loads((tmp_path / "model.json").read_text())["postprocess"]
    preds = predict(tmp_path / "model.safetensors", tmp_path / "model.json", ECGS, threads=1)
    assert np.array_equal(_scores(preds), _scores(parent))  # scores, not decisions
    post = preds.attrs["ecgaudit_inference"]["postprocess"]
    assert post["recalibrated"] == {}
    assert post["not_applied"] == {"group_thresholds": ["score:NORM"]}
    assert "NOT applied" in post["notes"][0] and "attribute sex" in post["notes"][0]


def test_isotonic_map_clips_like_sklearn() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.2, 0.8, 400)
    y = (rng.random(400) < p).astype(int)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    new = np.concatenate([[0.0, 0.05, 0.19, 0.81, 0.99, 1.0], rng.random(300)])
    got = recalibration_map("isotonic", {"x": iso.X_thresholds_, "y": iso.y_thresholds_}, new)
    np.testing.assert_allclose(got, iso.predict(new), rtol=0, atol=1e-12)
    assert got[0] == iso.y_thresholds_[0] and got[5] == iso.y_thresholds_[-1]


def _with_post(post: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"fs": 100, "leads": ["I"], "classes": ["A", "B"], "postprocess": post, **extra}


@pytest.mark.parametrize(("post", "message"), [
    ({"recalibration": {"C": {"method": "platt", "params": {"a": 1, "b": 0}}}},
     r"postprocess.recalibration names \['C'\], which are not classes"),
    ({"recalibration": {"A": {"method": "beta", "params": {}}}}, r"does not match any"),
    ({"recalibration": {"A": {"method": "temperature", "params": {"temperature": 0}}}},
     r"temperature: Input should be greater than 0"),
    ({"recalibration": {"A": {"method": "platt", "params": {"a": float("nan"), "b": 0}}}},
     r"params.a: Input should be a finite number"),
    ({"recalibration": {"A": {"method": "isotonic", "params": {"x": [0, 1], "y": [0.2]}}}},
     r"x \(2\) and y \(1\) need the same length"),
    ({"recalibration": {"A": {"method": "isotonic", "params": {"x": [0, 1],
                                                               "y": [0.9, 0.1]}}}},
     r"y must be non-decreasing"),
    ({"thresholds": {}}, r"postprocess.thresholds: unknown key"),
])
def test_invalid_postprocess_sections_are_config_errors(post: dict[str, Any],
                                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_model_config(_with_post(post), "m.json")


def test_recalibration_of_non_probability_scores_is_refused(tmp_path: Path) -> None:
    cfg = parse_model_config(_with_post(
        {"recalibration": {"B": {"method": "platt", "params": {"a": 2.0, "b": 0.5}}}},
        output_activation="none"))
    ok = apply_postprocess(np.array([[-3.0, 0.25], [7.0, 0.5]]), cfg)
    assert ok[:, 0].tolist() == [-3.0, 7.0]  # a class without a map is untouched
    assert ok[1, 1] == pytest.approx(1 / (1 + np.exp(-0.5)), abs=1e-15)  # logit(0.5) = 0
    with pytest.raises(InputError, match=r"class 'B' has a platt recalibration map.*"
                                         r"scores run from -1 to 2"):
        apply_postprocess(np.array([[0.0, -1.0], [0.0, 2.0]]), cfg, source="m.onnx")
    with pytest.raises(ConfigError, match=r"exported model config: invalid model config"):
        export_site_model(tmp_path / "x", state_dict={}, model_config=cfg.to_dict(),
                          manifest={}, postprocess={"recalibration": {"Z": {}}})
    assert not (tmp_path / "x").exists()
