"""Regenerate ``predictions.csv``: "ECG age" from real PTB-XL waveforms (folds 9-10).

Real data: PTB-XL v1.0.1 (Wagner et al., Sci Data 2020; PhysioNet; CC BY 4.0), the 1,819
waveforms in ``../shared/data/ptbxl``; the pretrained ECGResNet of iskoo-14/ecgresnet-ptbxl
(Apache-2.0, bundled in ``examples/ptbxl_model``).

Method: the pretrained network is frozen; its pooled 128-channel features (mean and max over
the five 3 s windows of each 10 s record) feed a new linear head for age, fitted on folds 1-8
by ridge regression (closed form, penalty chosen by 5-fold patient-grouped cross-validation
on folds 1-8 only). Folds 9-10 (patient-disjoint) are never seen in fitting; their
predictions are written with measured age, sex and site for the audit.

Run from the repository root (CPU, one thread, well under a minute)::

    python examples/continuous_age/make_predictions.py [DATA_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ecgaudit.io import atomic_write_text
from ecgaudit.models import load_model, load_model_config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
_CANDIDATES = [ROOT.parent / "shared" / "data", ROOT.parents[1] / "shared" / "data"]
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else next(
    (c for c in _CANDIDATES if c.is_dir()), _CANDIDATES[0])
MODEL = ROOT / "examples" / "ptbxl_model"
PENALTIES = (0.1, 1.0, 10.0, 100.0, 1000.0)


def features(signals: np.ndarray) -> np.ndarray:
    """Frozen ECGResNet features: mean and max of the pooled channels over 5 windows."""
    config = load_model_config(MODEL / "ecgresnet_ptbxl.json")
    net = load_model(MODEL / "ecgresnet_ptbxl.safetensors", config).module.eval()
    starts = range(0, signals.shape[-1] - 300 + 1, 150)
    out = []
    with torch.no_grad():
        for i in range(0, len(signals), 128):
            x = torch.from_numpy(np.asarray(signals[i:i + 128], dtype=np.float32))
            x = (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True) + 1e-6)
            per_window = [torch.flatten(net.pool(net.blocks(net.stem(x[..., s:s + 300]))), 1)
                          for s in starts]
            stack = torch.stack(per_window, dim=1)
            out.append(torch.cat([stack.mean(1), stack.amax(1)], dim=1).numpy())
    return np.concatenate(out).astype(np.float64)


def ridge(x: np.ndarray, y: np.ndarray, penalty: float) -> tuple[np.ndarray, float]:
    """Ridge coefficients on standardised features (intercept unpenalised)."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    coef = np.linalg.solve(z.T @ z + penalty * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    beta = coef / sd
    return beta, float(y.mean() - mu @ beta)


def choose_penalty(x: np.ndarray, y: np.ndarray, patients: np.ndarray) -> float:
    """Penalty with the lowest 5-fold (patient-grouped) cross-validated MAE."""
    fold = np.unique(patients, return_inverse=True)[1] % 5
    errors = []
    for lam in PENALTIES:
        err = 0.0
        for k in range(5):
            beta, a = ridge(x[fold != k], y[fold != k], lam)
            err += float(np.abs(x[fold == k] @ beta + a - y[fold == k]).sum())
        errors.append(err)
    return PENALTIES[int(np.argmin(errors))]


def main() -> None:
    torch.set_num_threads(1)
    waves = np.load(DATA / "ptbxl" / "waveforms_100hz_fp16.npy", mmap_mode="r")
    index = pd.read_csv(DATA / "ptbxl" / "waveforms_index.csv")
    db = pd.read_csv(DATA / "ptbxl" / "ptbxl_database.csv.gz")
    rows = index.merge(db, on="ecg_id", how="left")
    rows = rows[rows["age"].notna()].copy()
    rows["age"] = rows["age"].where(rows["age"] < 300, 90.0)  # PTB-XL codes 90+ as 300
    x = features(np.asarray(waves)[rows["row"].to_numpy()])
    train = (rows["strat_fold"] <= 8).to_numpy()
    y = rows["age"].to_numpy(dtype=np.float64)
    lam = choose_penalty(x[train], y[train], rows["patient_id"].to_numpy()[train])
    beta, a = ridge(x[train], y[train], lam)
    test = rows[~train]
    pred = x[~train] @ beta + a
    out = pd.DataFrame({
        "ecg_id": test["ecg_id"].to_numpy(), "patient_id": test["patient_id"].astype("int64"),
        "age": test["age"].to_numpy(), "age_hat": np.round(pred, 2),
        "sex": test["sex"].to_numpy(), "site": "site " + test["site"].astype("Int64").astype(str),
        "fold": test["strat_fold"].to_numpy(),
    }).sort_values("ecg_id")
    atomic_write_text(HERE / "predictions.csv", out.to_csv(index=False))
    print(f"ridge penalty {lam:g}; {int(train.sum())} training ECGs; {len(out)} audited; "
          f"MAE {np.mean(np.abs(pred - test['age'].to_numpy())):.2f} years")


if __name__ == "__main__":
    main()
