"""Rebuild this example's files from ../shared/data (PTB-XL, CC BY 4.0; ECGResNet, Apache-2.0).

Run from the repository root: ``python examples/ptbxl_model/make_example.py [DATA_DIR]``.
Writes the fold-10 (test fold) waveforms, their index, metadata and the safetensors weights.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save

from ecgaudit.io import atomic_write_bytes, atomic_write_text

HERE = Path(__file__).resolve().parent
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data"
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
CLASSES = ["NORM", "MI", "STTC", "CD", "HYP"]


def main() -> None:
    waves = np.load(DATA / "ptbxl" / "waveforms_100hz_fp16.npy", mmap_mode="r")
    index = pd.read_csv(DATA / "ptbxl" / "waveforms_index.csv")
    db = pd.read_csv(DATA / "ptbxl" / "ptbxl_database.csv.gz")
    rows = index.merge(db, on="ecg_id", how="left")
    rows = rows[rows["strat_fold"] == 10].sort_values("ecg_id")
    signals = np.asarray(waves[rows["row"].to_numpy()], dtype=np.float16)
    buf = io.BytesIO()
    np.savez_compressed(buf, signals=signals)
    atomic_write_bytes(HERE / "waveforms_fold10.npz", buf.getvalue())
    idx = pd.DataFrame({"row": np.arange(len(rows)), "ecg_id": rows["ecg_id"].to_numpy()})
    atomic_write_text(HERE / "waveforms_fold10_index.csv", idx.to_csv(index=False))
    sidecar = {"fs": 100, "leads": LEADS, "units": "normalised", "id_column": "ecg_id"}
    atomic_write_text(HERE / "waveforms_fold10.json", json.dumps(sidecar, indent=2) + "\n")
    meta = rows[["ecg_id", "patient_id", "age", "sex", "site", "device"]].copy()
    meta["patient_id"] = meta["patient_id"].astype("int64")
    meta["site"] = meta["site"].astype("Int64")
    for c in CLASSES:
        meta[f"label_{c}"] = rows[f"label_{c}"].astype("int64")
    atomic_write_text(HERE / "metadata.csv", meta.to_csv(index=False))
    model_dir = DATA / "ptbxl_ecgresnet_model"
    sd = torch.load(model_dir / "best_resnet_act_relu.state_dict.pt", weights_only=True)
    meta_info = {"source": "iskoo-14/ecgresnet-ptbxl", "license": "Apache-2.0"}
    atomic_write_bytes(HERE / "ecgresnet_ptbxl.safetensors", save(sd, metadata=meta_info))


if __name__ == "__main__":
    main()
