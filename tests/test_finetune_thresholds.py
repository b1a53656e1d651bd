"""Group thresholds: agreement with fairlearn, TPR parity reached, cost computed independently."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, true_positive_rate
from sklearn.metrics import recall_score

from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.errors import InputError
from ecgaudit.finetune import fit_group_thresholds, threshold_cost
from ecgaudit.finetune._thresholds import _FixedScores


@pytest.fixture(scope="module")
def shifted() -> tuple[pd.DataFrame, pd.DataFrame]:
    # female scores shifted down on the logit scale: a planted TPR gap at one threshold
    full = make_synthetic_cohort(6000, seed=21, group_shift={"female": -1.2}).frame
    return full.iloc[:3000].reset_index(drop=True), full.iloc[3000:].reset_index(drop=True)


def test_rule_matches_fairlearn_and_equalises_tpr(shifted) -> None:
    from fairlearn.postprocessing import ThresholdOptimizer

    fit, held = shifted
    rule = fit_group_thresholds(fit["p_hf"], fit["y_hf"], fit["sex"], attribute="sex")
    ref = ThresholdOptimizer(estimator=_FixedScores().fit(fit[["p_hf"]].to_numpy(), None),
                             constraints="true_positive_rate_parity",
                             objective="balanced_accuracy_score", prefit=True,
                             predict_method="predict")
    ref.fit(fit[["p_hf"]].to_numpy(), fit["y_hf"], sensitive_features=fit["sex"])
    expected = ref._pmf_predict(held[["p_hf"]].to_numpy(), sensitive_features=held["sex"])[:, 1]
    got = rule.positive_probability(held["p_hf"], held["sex"])
    assert got == pytest.approx(expected, abs=1e-12)
    # expected TPR per group on the fitting rows is equal (parity), it was not at 0.5
    prob = rule.positive_probability(fit["p_hf"], fit["sex"])
    pos = fit["y_hf"] == 1
    tpr = {g: prob[pos & (fit["sex"] == g)].mean() for g in ("female", "male")}
    assert tpr["female"] == pytest.approx(tpr["male"], abs=0.02)
    single = MetricFrame(metrics=true_positive_rate, y_true=fit["y_hf"],
                         y_pred=(fit["p_hf"] >= 0.5).astype(int), sensitive_features=fit["sex"])
    assert single.difference() > 0.15
    # draws are seeded and the rule survives JSON
    assert np.array_equal(rule.predict(held["p_hf"], held["sex"], seed=1),
                          rule.predict(held["p_hf"], held["sex"], seed=1))
    data = json.loads(json.dumps(rule.to_dict()))
    assert data["uses_protected_attribute"] is True and "sex" in data["warning"]


def test_cost_matches_independent_rates(shifted) -> None:
    fit, held = shifted
    rule = fit_group_thresholds(fit["p_hf"], fit["y_hf"], fit["sex"], attribute="sex")
    cost = threshold_cost(held["p_hf"], held["y_hf"], held["sex"], rule, 0.5)
    y = held["y_hf"].to_numpy()
    before = (held["p_hf"] >= 0.5).astype(int)
    assert cost["overall"]["sensitivity_before"] == pytest.approx(recall_score(y, before))
    assert cost["overall"]["specificity_before"] == pytest.approx(recall_score(1 - y, 1 - before))
    prob = rule.positive_probability(held["p_hf"], held["sex"])
    assert cost["overall"]["sensitivity_after"] == pytest.approx(prob[y == 1].mean())
    assert cost["cost"]["sensitivity"] == pytest.approx(
        cost["overall"]["sensitivity_after"] - cost["overall"]["sensitivity_before"])
    f = held["sex"] == "female"
    assert cost["groups"]["female"]["sensitivity_before"] == pytest.approx(
        recall_score(y[f], before[f]))
    assert cost["uses_protected_attribute"] is True


def test_group_without_positives_is_an_error(shifted) -> None:
    fit, _ = shifted
    y = fit["y_hf"].where(fit["sex"] == "male", 0)
    with pytest.raises(InputError, match=r"short: female \(0 positive"):
        fit_group_thresholds(fit["p_hf"], y, fit["sex"], attribute="sex")
    rule = fit_group_thresholds(fit["p_hf"], fit["y_hf"], fit["sex"], attribute="sex")
    with pytest.raises(InputError, match=r"no threshold was fitted for sex group\(s\) \['other'\]"):
        rule.positive_probability([0.3], ["other"])
