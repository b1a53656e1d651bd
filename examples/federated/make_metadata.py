"""Rebuild ``ptbxl_sites_metadata.csv`` from ../shared/data (PTB-XL v1.0.1, CC BY 4.0).

Run from the repository root: ``python examples/federated/make_metadata.py [DATA_DIR]``.
One row per PTB-XL ECG that has a waveform in ``ptbxl/waveforms_100hz_fp16.npy`` (1,819):
ids, age, sex, recording site, device, fold and the five diagnostic superclass labels.
Used by ``examples/federated/`` (sites 0, 1, 2 as federated clients) and ``examples/adapt/``
(labelled sites 0 + 1 -> unlabelled site 2). Source: Wagner et al., PTB-XL, a large publicly
available electrocardiography dataset, Sci Data 7, 154 (2020); PhysioNet.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from ecgaudit.io import atomic_write_text

HERE = Path(__file__).resolve().parent
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "data"
CLASSES = ["NORM", "MI", "STTC", "CD", "HYP"]


def main() -> None:
    index = pd.read_csv(DATA / "ptbxl" / "waveforms_index.csv")
    db = pd.read_csv(DATA / "ptbxl" / "ptbxl_database.csv.gz")
    rows = index.merge(db, on="ecg_id", how="left").sort_values("ecg_id")
    meta = rows[["ecg_id", "patient_id", "age", "sex"]].copy()
    meta["patient_id"] = meta["patient_id"].astype("int64")
    meta["site"] = rows["site"].astype("Int64")
    meta["device"] = rows["device"].str.split().str.join(" ")  # "CS100    3" -> "CS100 3"
    meta["strat_fold"] = rows["strat_fold"].astype("int64")
    for c in CLASSES:
        meta[f"label_{c}"] = rows[f"label_{c}"].astype("int64")
    atomic_write_text(HERE / "ptbxl_sites_metadata.csv",
                      meta.to_csv(index=False, lineterminator="\n"))


if __name__ == "__main__":
    main()
