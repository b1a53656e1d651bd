"""Patient-level split, leakage and too-few-positives checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgaudit.cohort import age_band_labels
from ecgaudit.config import AttributeConfig
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.errors import InputError, ValidationError
from ecgaudit.finetune import (
    attribute_groups,
    check_no_overlap,
    check_positives,
    combined_groups,
    split_patients,
)


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return make_synthetic_cohort(3000, seed=11, tasks=("hf", "af"), prevalence=0.1,
                                 ecgs_per_patient=2.5).frame


def _split(frame: pd.DataFrame, seed: int = 0, fractions=(0.5, 0.15, 0.35)):
    sex = attribute_groups(frame, "sex", AttributeConfig(column="sex"))
    return split_patients(frame, patient_column="patient_id", label_columns=["y_hf", "y_af"],
                          strata={"sex": sex}, fractions=fractions, seed=seed)


def test_no_patient_in_two_splits_and_fractions_hold(cohort: pd.DataFrame) -> None:
    sp = _split(cohort)
    per_patient = pd.Series(sp.split).groupby(cohort["patient_id"].to_numpy()).nunique()
    assert per_patient.max() == 1
    n_pat = cohort["patient_id"].nunique()
    assert sum(sp.n_patients.values()) == n_pat
    for name, frac in zip(("train", "val", "test"), (0.5, 0.15, 0.35), strict=True):
        assert abs(sp.n_patients[name] - frac * n_pat) <= sp.strata + 1


def test_split_is_stratified_by_label_and_attribute(cohort: pd.DataFrame) -> None:
    sp = _split(cohort)
    pat = cohort.groupby("patient_id").agg(hf=("y_hf", "max"), sex=("sex", "first"))
    pat_split = pd.Series(sp.split, index=cohort["patient_id"]).groupby(level=0).first()
    pat = pat.join(pat_split.rename("split"))
    for name, frac in zip(("train", "val", "test"), (0.5, 0.15, 0.35), strict=True):
        part = pat[pat["split"] == name]
        # positives of the stratifying label and each sex follow the fractions closely
        assert abs(part["hf"].sum() - frac * pat["hf"].sum()) <= 3
        for sex in ("female", "male"):
            assert abs((part["sex"] == sex).sum() - frac * (pat["sex"] == sex).sum()) <= 4


def test_split_is_seeded(cohort: pd.DataFrame) -> None:
    a, b, c = _split(cohort, 3), _split(cohort, 3), _split(cohort, 4)
    assert np.array_equal(a.split, b.split)
    assert not np.array_equal(a.split, c.split)


def test_patient_column_problems_are_errors(cohort: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="patient column 'pid' is not in the metadata"):
        split_patients(cohort, patient_column="pid", label_columns=["y_hf"])
    broken = cohort.copy()
    broken["patient_id"] = broken["patient_id"].astype("Float64")
    broken.loc[[4, 9], "patient_id"] = pd.NA
    with pytest.raises(ValidationError, match=r"rows 5, 10: missing patient id"):
        split_patients(broken, patient_column="patient_id", label_columns=["y_hf"])


def test_overlap_is_an_error_naming_count_and_examples(cohort: pd.DataFrame) -> None:
    sp = _split(cohort)
    train = cohort[sp.mask("train")]
    test = cohort[sp.mask("test")]
    check_no_overlap(train, test, id_column="ecg_id", patient_column="patient_id")
    # plant 7 patients of the test set into the fine-tuning data under new record ids
    leaked_patients = test["patient_id"].drop_duplicates().iloc[:7]
    leaked = test[test["patient_id"].isin(leaked_patients)].assign(ecg_id=lambda d: d.ecg_id + 10**6)
    with pytest.raises(InputError, match=r"Patient overlap .*: 7 shared patient ids \(e\.g\. "):
        check_no_overlap(pd.concat([train, leaked]), test, id_column="ecg_id",
                         patient_column="patient_id")
    # record overlap is reported first, with the "+N more" summary
    with pytest.raises(InputError, match=r"Record overlap .*: 12 shared record ids .*\(\+7 more\)"):
        check_no_overlap(pd.concat([train, test.iloc[:12]]), test, id_column="ecg_id",
                         patient_column="patient_id")


def test_too_few_positives_is_an_error_before_training(cohort: pd.DataFrame) -> None:
    sp = _split(cohort)
    counts = check_positives(cohort, sp, {"hf": "y_hf"}, {"train": 10, "val": 3})
    assert counts["train"]["hf"] == int(cohort.loc[sp.mask("train"), "y_hf"].sum())
    few = cohort.copy()
    keep_pos = few.index[(few["y_af"] == 1) & sp.mask("train")][:4]
    few["y_af"] = 0
    few.loc[keep_pos, "y_af"] = 1
    with pytest.raises(ValidationError, match=r"too few positives for task 'af' in the train "
                                              r"split: 4 \(need at least 10\)"):
        check_positives(few, sp, {"hf": "y_hf", "af": "y_af"}, {"train": 10, "val": 3})


def test_attribute_groups_use_the_audit_age_bands() -> None:
    frame = pd.DataFrame({"age": [25, 40, 59, 60, 79, 80, np.nan], "sex": [*"mfmfmf", None]})
    age = attribute_groups(frame, "age", AttributeConfig(column="age", kind="age",
                                                          bands=(40.0, 60.0, 80.0)))
    labels = age_band_labels((40.0, 60.0, 80.0))
    assert age.tolist() == [labels[0], labels[1], labels[1], labels[2], labels[2], labels[3],
                            "Unknown"]
    both = combined_groups(frame, {"age": AttributeConfig(column="age", kind="age"),
                                   "sex": AttributeConfig(column="sex")})
    assert both[0] == f"{labels[0]} & m" and both[-1] == "Unknown & Unknown"
    with pytest.raises(InputError, match="column 'race' is not in the metadata"):
        attribute_groups(frame, "race", AttributeConfig(column="race"))
