"""The shipped continuous examples: real ECG age by site, synthetic potassium gate."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecgaudit import audit_files
from ecgaudit.config import load_config
from ecgaudit.policy import evaluate, load_policy

ROOT = Path(__file__).resolve().parents[1]


def test_ecg_age_example_shows_the_site_shift() -> None:
    here = ROOT / "examples" / "continuous_age"
    cfg = load_config(here / "audit.yaml").model_copy(update={"bootstrap": 0})
    res = audit_files(here / "predictions.csv", cfg)
    m = res.metrics.set_index(["task", "attribute", "group", "metric"])
    site0 = m.loc[("ecg_age", "site", "site 0", "bias")]
    assert site0.ci_low > 5.0  # runs high at site 0
    overall = m.loc[("ecg_age", "overall", "all", "bias")]
    assert overall.ci_low < 0 < overall.ci_high  # ... which the overall figure hides
    assert m.loc[("ecg_age", "overall", "all", "mae")].estimate == pytest.approx(10.9, abs=0.1)
    assert "ecg_age>=65" in set(res.metrics.task)


def test_synthetic_potassium_fails_its_policy() -> None:
    here = ROOT / "examples" / "synthetic_potassium"
    res = audit_files(here / "cohort.csv", here / "audit.yaml")
    gate = evaluate(res, load_policy(here / "policy.yaml", res))
    failed = {(o.rule_id, o.group) for o in gate.outcomes if o.outcome == "fail"}
    assert ("bias-within-0.2", "Black") in failed
    assert gate.exit_code == 1
