"""Rebuild ``site1_metadata.csv`` from ../shared/data (PTB-XL v1.0.1, CC BY 4.0).

Run from the repository root: ``python examples/site_finetune/make_site_metadata.py [DATA_DIR]``.
One row per PTB-XL ECG recorded at site 1 that has a waveform in
``ptbxl/waveforms_100hz_fp16.npy``: ids, age, sex and the five diagnostic superclass labels.
Source: Wagner et al., PTB-XL, a large publicly available electrocardiography dataset,
Sci Data 7, 154 (2020); PhysioNet.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ecgaudit.io import atomic_write_text

HERE = Path(__file__).resolve().parent
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data"
SITE = 1
CLASSES = ["NORM", "MI", "STTC", "CD", "HYP"]


def main() -> None:
    index = pd.read_csv(DATA / "ptbxl" / "waveforms_index.csv")
    db = pd.read_csv(DATA / "ptbxl" / "ptbxl_database.csv.gz")
    rows = index.merge(db, on="ecg_id", how="left")
    rows = rows[rows["site"] == SITE].sort_values("ecg_id")
    meta = rows[["ecg_id", "patient_id", "age", "sex", "strat_fold"]].copy()
    meta["patient_id"] = meta["patient_id"].astype("int64")
    for c in CLASSES:
        meta[f"label_{c}"] = rows[f"label_{c}"].astype("int64")
    atomic_write_text(HERE / "site1_metadata.csv", meta.to_csv(index=False, lineterminator="\n"))


if __name__ == "__main__":
    main()
