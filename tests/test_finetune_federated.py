"""strategy: federated - FedAvg / FedProx aggregation, determinism, resume, errors, end to end.

The rounds run on Flower's simulation engine (``run_flower``, Ray); ``run_federated`` (in
process) is its reference.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from typer.testing import CliRunner

from ecgaudit.cli import app
from ecgaudit.errors import ComputationError, InputError
from ecgaudit.finetune import TrainingConfig, parse_finetune_config, state_sha256
from ecgaudit.finetune._data import score_windows
from ecgaudit.finetune._fedconfig import FederatedConfig
from ecgaudit.finetune._federated import SiteClient, fedavg, run_federated
from ecgaudit.finetune._flower import run_flower
from ecgaudit.io.waveforms import open_ecgs
from ecgaudit.models import Preprocessor, load_model, load_model_config
from ecgaudit.pipeline._finetune import finetune_and_audit

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "ptbxl_model"
MODEL, MODEL_CFG = EX / "ecgresnet_ptbxl.safetensors", EX / "ecgresnet_ptbxl.json"
ECGS, META = EX / "waveforms_fold10.npz", EX / "metadata.csv"


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 5)
        self.bn = nn.BatchNorm1d(4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.conv(x))).mean(dim=2))


def _site(seed: int, n: int = 24, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=(n, 2)).astype(np.float32)
    x = rng.normal(size=(n, 2, 2, 40)).astype(np.float32) + shift
    x[:, :, 0, :] += y[:, None, :1] * 1.5  # lead 0 carries task 0
    return x, y


def _clients(seed: int = 0, same: bool = False) -> list[SiteClient]:
    out = []
    for i in range(2):
        x, y = _site(0 if same else i + 10, shift=0.0 if same else 0.5 * i)
        out.append(SiteClient(f"s{i}", x[:16], y[:16], x[16:], y[16:],
                              seed=seed * 1000 + (0 if same else i)))
    return out


TRAIN = TrainingConfig(lr=1e-2, batch_size=8, num_threads=1, patience=5)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return _Tiny()


def test_fedavg_is_the_record_weighted_mean_against_numpy() -> None:
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(3, 4)) for _ in range(3)]
    counts = [5, 20, 75]
    states = [{"w": torch.tensor(a, dtype=torch.float32),
               "n": torch.tensor(c // 5, dtype=torch.int64)} for a, c in zip(arrays, counts,
                                                                         strict=True)]
    got = fedavg(states, counts)
    ref = np.average(np.stack(arrays), axis=0, weights=counts)
    np.testing.assert_allclose(got["w"].numpy(), ref, rtol=1e-6)
    assert got["w"].dtype == torch.float32
    assert int(got["n"]) == 15  # integer buffers (num_batches_tracked): maximum


def test_identical_sites_give_the_single_site_update() -> None:
    """FedAvg of two identical clients (same data, same seed) equals one client's update."""
    fed = FederatedConfig(rounds=1, local_epochs=1)
    m2, m1 = _model(), _model()
    run_federated(m2, _clients(same=True), federated=fed, config=TRAIN, task_index=[0, 1])
    one = _clients(same=True)[:1]
    run_federated(m1, one, federated=fed, config=TRAIN, task_index=[0, 1])
    for (k, a), b in zip(m2.state_dict().items(), m1.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    fed = FederatedConfig(rounds=2, algorithm="fedprox", proximal_mu=0.1)
    shas = []
    for seed in (0, 0, 1):
        m = _model()
        cfg = TRAIN.model_copy(update={"seed": seed})
        res = run_federated(m, _clients(seed), federated=fed, config=cfg, task_index=[0, 1])
        shas.append(state_sha256(res.state_dict))
    assert shas[0] == shas[1] != shas[2]


def test_fedprox_keeps_local_weights_closer_to_the_global_model() -> None:
    """The proximal term (mu/2)||w - w_global||^2 shrinks the local step."""
    x, y = _site(3)
    moved = {}
    for mu in (0.0, 100.0):
        m = _model()
        g = {k: v.clone() for k, v in m.state_dict().items()}
        client = SiteClient("a", x, y, x, y, seed=0)
        trainable = [n for n, _ in m.named_parameters()]
        state, n, _ = client.fit(m, g, trainable=trainable, config=TRAIN, local_epochs=3,
                                 mu=mu, tasks=[0, 1], aggregate="max", round_=1)
        assert n == len(x)
        moved[mu] = sum(float(((state[k] - g[k]) ** 2).sum()) for k in trainable)
    assert moved[100.0] < 0.5 * moved[0.0]


def test_resumed_run_equals_an_uninterrupted_one(tmp_path: Path) -> None:
    m_full = _model()
    full = run_federated(m_full, _clients(), federated=FederatedConfig(rounds=3),
                         config=TRAIN, task_index=[0, 1], checkpoint_dir=tmp_path / "a")
    m_part = _model()
    run_federated(m_part, _clients(), federated=FederatedConfig(rounds=1), config=TRAIN,
                  task_index=[0, 1], checkpoint_dir=tmp_path / "b")
    m_res = _model()
    resumed = run_federated(m_res, _clients(), federated=FederatedConfig(rounds=3),
                            config=TRAIN, task_index=[0, 1], checkpoint_dir=tmp_path / "b",
                            resume=True)
    assert [h["round"] for h in resumed.history] == [1, 2, 3]
    assert state_sha256(full.state_dict) == state_sha256(resumed.state_dict)
    assert state_sha256(full.state_dict) != state_sha256(
        {k: v for k, v in _model().state_dict().items()})


@pytest.fixture
def by_value() -> Iterator[None]:
    """Ray workers receive this test module's ``_Tiny`` model by value (not importable)."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.slow
@pytest.mark.usefixtures("by_value")
def test_flower_rounds_and_resume_equal_the_in_process_reference(tmp_path: Path) -> None:
    """Flower's simulation (Ray workers, FedProx strategy) reproduces the in-process rounds.

    Round 1 runs on Flower and is checkpointed; round 2 is a resumed Flower run. With two
    sites of equal size the FedAvg weights are 1/2, so Flower's float32 mean and the
    reference's float64 mean round to the same float32: the weights must be identical.
    """
    fed = FederatedConfig(rounds=2, algorithm="fedprox", proximal_mu=0.1)
    ref = run_federated(_model(), _clients(), federated=fed, config=TRAIN, task_index=[0, 1])
    one = fed.model_copy(update={"rounds": 1})
    run_flower(_model(), _clients(), federated=one, config=TRAIN, task_index=[0, 1],
               checkpoint_dir=tmp_path)
    got = run_flower(_model(), _clients(), federated=fed, config=TRAIN, task_index=[0, 1],
                     checkpoint_dir=tmp_path, resume=True)
    assert state_sha256(got.state_dict) == state_sha256(ref.state_dict)
    assert got.best_round == ref.best_round
    assert got.initial_val["val_loss"] == pytest.approx(ref.initial_val["val_loss"], abs=1e-9)
    assert [h["round"] for h in got.history] == [1, 2]
    for g, r in zip(got.history, ref.history, strict=True):
        assert g["round"] == r["round"] and g["val_loss"] == pytest.approx(r["val_loss"])
        for s in ("s0", "s1"):
            assert g["sites"][s]["train_loss"] == pytest.approx(r["sites"][s]["train_loss"])
            assert g["sites"][s]["n_train"] == r["sites"][s]["n_train"] == 16
    assert state_sha256(got.state_dict) != state_sha256(dict(_model().state_dict()))


@pytest.mark.slow
@pytest.mark.usefixtures("by_value")
def test_flower_stops_early_and_reports_a_diverged_site_like_the_reference() -> None:
    # lr 1: round 1 overshoots (validation loss above the parent's), patience 1 stops there
    still = TRAIN.model_copy(update={"lr": 1.0, "patience": 1})
    fed = FederatedConfig(rounds=3)
    ref = run_federated(_model(), _clients(), federated=fed, config=still, task_index=[0, 1])
    got = run_flower(_model(), _clients(), federated=fed, config=still, task_index=[0, 1])
    assert ref.stopped_early and got.stopped_early
    assert [h["round"] for h in got.history] == [h["round"] for h in ref.history] == [1]
    assert got.best_round == ref.best_round == 0
    assert state_sha256(got.state_dict) == state_sha256(dict(_model().state_dict()))
    # a site whose loss diverges stops the run with that site's message, not a traceback
    wild = TRAIN.model_copy(update={"lr": 1e30})
    with pytest.raises(ComputationError, match=r"site 's0', round 1: .*training\.lr"):
        run_flower(_model(), _clients(), federated=fed, config=wild, task_index=[0, 1])


def test_without_flower_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flwr.simulation", None)
    with pytest.raises(InputError, match=r"ecgaudit\[federated\]"):
        run_flower(_model(), _clients(), federated=FederatedConfig(rounds=1), config=TRAIN,
                   task_index=[0, 1])


def test_config_defaults_and_errors() -> None:
    cfg = parse_finetune_config({"strategy": "federated", "tasks": ["NORM"]})
    assert cfg.federated is not None and cfg.federated.algorithm == "fedavg"
    cfg = parse_finetune_config({"strategy": "federated", "tasks": ["NORM"],
                                 "federated": {"sites": [0, 1.0, "B"]}})
    assert cfg.federated is not None and cfg.federated.sites == ("0", "1", "B")
    with pytest.raises(Exception, match="algorithm"):
        parse_finetune_config({"strategy": "federated", "tasks": ["NORM"],
                               "federated": {"algorithm": "fedsgd"}})


def _cfg(tmp_path: Path, **fed: object) -> Path:
    data = {"strategy": "federated", "tasks": ["NORM", "CD"], "attributes": {"sex": {}},
            "split": {"seed": 0, "train": 0.5, "val": 0.2, "test": 0.3},
            "min_positives": {"train": 2, "val": 1, "test": 1},
            "training": {"batch_size": 8, "max_batches_per_epoch": 1, "lr": 1e-3,
                         "num_threads": 1},
            "federated": {"sites": ["0", "1", "2"], "rounds": 1, "min_site_patients": 20,
                          "compare": False, **fed},
            "gate": {"n_boot": 100}, "audit": {"intersections": "none"}}
    p = tmp_path / "fed.yaml"
    p.write_text(json.dumps(data))
    return p


def _cli(cfg: Path, out: Path) -> object:
    return CliRunner().invoke(app, ["finetune", "--model", str(MODEL), "--model-config",
                                    str(MODEL_CFG), "--ecgs", str(ECGS), "--metadata",
                                    str(META), "--config", str(cfg), "--out", str(out),
                                    "--no-fail-on-gate"])


def test_site_with_too_few_patients_exits_2(tmp_path: Path) -> None:
    res = _cli(_cfg(tmp_path, sites=["0", "1", "3"]), tmp_path / "o")
    assert res.exit_code == 2, res.output
    assert "site '3'" in res.output and "min_site_patients" in res.output
    assert not (tmp_path / "o" / "model.safetensors").exists()
    res = _cli(_cfg(tmp_path, sites=["0", "99"]), tmp_path / "o")
    assert res.exit_code == 2 and "'99'" in res.output


@pytest.mark.slow
def test_end_to_end_per_site_audit_no_patient_leak_byte_identical(tmp_path: Path) -> None:
    res = _cli(_cfg(tmp_path), tmp_path / "o")
    assert res.exit_code == 0, res.output
    out = tmp_path / "o"
    again = finetune_and_audit(MODEL, MODEL_CFG, ECGS, META, _cfg(tmp_path), tmp_path / "p")
    for p in sorted(out.rglob("*")):
        if p.is_file() and "checkpoints" not in p.parts:
            assert p.read_bytes() == (tmp_path / "p" / p.relative_to(out)).read_bytes(), p
    assert again.gate.status in ("pass", "inconclusive", "fail")
    # the exported global model, loaded like any model, reproduces the "after" audit
    split_ = pd.read_csv(out / "split.csv")
    adapted = load_model(out / "model.safetensors", load_model_config(out / "model.json"))
    prep = Preprocessor(adapted.config)
    recs = {r.record_id: prep(r) for r in open_ecgs(ECGS)}
    ids = split_.loc[split_["split"] == "test", "ecg_id"].tolist()
    p = score_windows(adapted, np.stack([recs[str(i)] for i in ids]))  # record ids are text
    y = pd.read_csv(META).set_index("ecg_id").loc[ids, "label_NORM"]
    m = again.after.metrics
    row = m[(m.task == "NORM") & (m.attribute == "overall") & (m.metric == "auroc")]
    assert row.estimate.iloc[0] == pytest.approx(
        roc_auc_score(y, p[:, adapted.config.classes.index("NORM")]), abs=1e-9)
    split = pd.read_csv(out / "split.csv")
    meta = pd.read_csv(META).merge(split, on="ecg_id")
    train_p = set(meta.loc[meta.split.isin(["train", "val"]), "patient_id"])
    assert not train_p & set(meta.loc[meta.split == "test", "patient_id"])
    assert set(meta.loc[~meta.site.isin([0, 1, 2]), "split"]) == {"excluded"}
    comp = pd.read_csv(out / "audit" / "comparison.csv")
    sites = set(comp.loc[comp.attribute == "site", "group"].astype(str))
    assert sites == {"0", "1", "2"}  # every metric also per site
    man = json.loads((out / "manifest.json").read_text())
    assert man["strategy"] == "federated" and man["training"]["rounds_run"] == 1
    assert set(man["training"]["sites"]) == {"0", "1", "2"}
    positives = [v for site in man["training"]["sites"].values()
                 for split in site["positives"].values() for v in split.values()]
    assert all(v == "<11" or v == 0 or v > 10 for v in positives)  # no counts of 1-10
    assert "<11" in positives
    assert man["weights_sha256"] != man["parent_model"]["sha256"]


@pytest.mark.slow
def test_compare_centralised_local_federated_paired(tmp_path: Path) -> None:
    cfg = json.loads(_cfg(tmp_path).read_text())
    cfg["federated"].update({"compare": True, "algorithm": "fedprox", "rounds": 2})
    cfg["training"]["epochs"] = 1
    a = finetune_and_audit(MODEL, MODEL_CFG, ECGS, META, cfg, tmp_path / "a")
    t = pd.read_csv(tmp_path / "a" / "audit" / "approaches.csv")
    assert set(t.comparison) == {"federated - centralised", "federated - local",
                                 "centralised - parent", "local - parent"}
    # paired change = candidate - baseline, with an interval around it
    ok = t[(t.status == "ok") & (t.metric == "auroc")]
    assert len(ok) and np.allclose(ok.change, ok.candidate - ok.baseline)
    assert (ok.change_ci_low <= ok.change).all() and (ok.change <= ok.change_ci_high).all()
    assert a.manifest["training"]["compared"] == ["approaches", "approaches_metrics"]
