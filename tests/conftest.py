"""Shared fixtures: real PTB-XL example files and synthetic cohorts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ecgaudit.datasets import make_synthetic_cohort

ROOT = Path(__file__).resolve().parents[1]
PTBXL = ROOT / "examples" / "ptbxl"


@pytest.fixture(scope="session")
def ptbxl_paths() -> dict[str, Path]:
    return {
        "predictions": PTBXL / "predictions.csv",
        "metadata": PTBXL / "metadata.csv",
        "config": PTBXL / "audit.yaml",
    }


@pytest.fixture(scope="session")
def ptbxl_frame(ptbxl_paths: dict[str, Path]) -> pd.DataFrame:
    pred = pd.read_csv(ptbxl_paths["predictions"])
    meta = pd.read_csv(ptbxl_paths["metadata"])
    return pred.merge(meta, on="ecg_id", validate="one_to_one")


@pytest.fixture(scope="session")
def synthetic() -> pd.DataFrame:
    return make_synthetic_cohort(
        4000, seed=7, tasks=("hf", "af"), group_separation={"Black": 1.0},
        group_shift={"Asian": 0.8},
    ).frame


def synthetic_config(**overrides: object) -> dict[str, object]:
    cfg: dict[str, object] = {
        "tasks": [
            {"name": "hf", "label": "y_hf", "score": "p_hf"},
            {"name": "af", "label": "y_af", "score": "p_af"},
        ],
        "attributes": {"race": {"reference": "White"}, "sex": {}, "age": {"kind": "age"}},
        "patient_column": "patient_id",
        "threshold": {"rule": "fixed", "value": 0.3},
        # Closed-form intervals keep the many audits of these tests fast; tests about the
        # bootstrap pass ``bootstrap=B`` explicitly (the library default is 1000).
        "bootstrap": 0,
    }
    cfg.update(overrides)
    return cfg
