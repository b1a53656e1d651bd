"""Memory of the pooled 10^7-row audit (issue 17): narrow cohort codes keep their values and
the audit; categorical ages validate and band as their values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import ecgaudit.pipeline._audit as audit_module
from ecgaudit.cohort import build_cohort, narrow_codes
from ecgaudit.config import parse_config
from ecgaudit.errors import InputError
from ecgaudit.pipeline import audit
from ecgaudit.pipeline._fromsummaries import _audit_summaries_rows as audit_summaries
from ecgaudit.pipeline._summaries import summarize
from tests.test_summaries import cohort, config


def test_codes_keep_their_values_in_the_narrowest_dtype() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame({"few": rng.choice(["a", "b", "c"], n),
                          "many": [f"g{v}" for v in rng.integers(0, 300, n)],
                          "y": rng.integers(0, 2, n), "p": rng.random(n)})
    cfg = parse_config({"tasks": [{"name": "t", "label": "y", "score": "p"}],
                        "attributes": {"few": {}, "many": {}}, "max_groups": 5000,
                        "threshold": {"rule": "fixed", "value": 0.5}}, source="test")
    wide = build_cohort(frame, cfg)
    narrow = narrow_codes(wide)
    assert [g.attribute for g in narrow.groupings] == [g.attribute for g in wide.groupings]
    want = {"overall": np.int8, "few": np.int8, "many": np.int16, "few & many": np.int16}
    for w, g in zip(wide.groupings, narrow.groupings):
        assert g.codes.dtype == want[g.attribute], g.attribute
        assert w.codes.dtype == np.int32  # the input cohort is left as it was
        np.testing.assert_array_equal(g.codes, w.codes)
        assert g.groups == w.groups and g.reference == w.reference


def test_pooled_audit_is_the_same_with_narrow_codes(monkeypatch) -> None:
    df = cohort(600, seed=4)
    sites = np.where(np.arange(len(df)) % 3 == 0, "A", "B")
    cfg = config(bootstrap=40)
    summaries = [summarize(df[sites == s].reset_index(drop=True), config(), site=s)
                 for s in ("A", "B")]
    got = audit_summaries(summaries, cfg)
    monkeypatch.setattr(audit_module, "narrow_codes", lambda c: c)
    want = audit_summaries(summaries, cfg)
    assert len(got.metrics) > 0 and got.metrics["ci_method"].str.contains("bootstrap").any()
    pd.testing.assert_frame_equal(got.metrics, want.metrics)
    pd.testing.assert_frame_equal(got.disparities, want.disparities)
    # JSON text: NaN (no estimate) equals NaN there, unlike in a dict comparison
    assert json.dumps(got.extras, sort_keys=True) == json.dumps(want.extras, sort_keys=True)


def _age_frame(ages: list) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = len(ages)
    return pd.DataFrame({"age": pd.Series(ages, dtype=object),
                         "y": rng.integers(0, 2, n), "p": rng.random(n)})


AGE_CFG = {"tasks": [{"name": "t", "label": "y", "score": "p"}],
           "attributes": {"age": {"kind": "age"}}, "threshold": {"rule": "fixed", "value": 0.5}}


def test_categorical_ages_validate_and_band_as_their_values() -> None:
    ages = [30.0, 45.5, None, 81.0, 30.0, 66.0] * 40
    plain = _age_frame(ages)
    cat = plain.assign(age=plain["age"].astype("category"))
    a, b = audit(plain, AGE_CFG), audit(cat, AGE_CFG)
    assert "Unknown" in set(a.metrics.group)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    bad = _age_frame(["41", "abc", "300", None] * 30)
    errors = []
    for frame in (bad, bad.assign(age=bad["age"].astype("category"))):
        with pytest.raises(InputError) as e:
            audit(frame, AGE_CFG)
        errors.append(str(e.value))
    assert "abc" in errors[0] and "300" in errors[0]
    assert errors[0] == errors[1]  # the same problems, rows and hints
