"""``kind: continuous`` tasks end to end: config, validation, audit tables, gate."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ecgaudit import audit
from ecgaudit.config import parse_config
from ecgaudit.datasets import make_synthetic_potassium
from ecgaudit.errors import ConfigError, ValidationError
from ecgaudit.pipeline._continuous import REASON_NOT_PROBABILITY
from ecgaudit.policy import evaluate, parse_policy
from ecgaudit.schema import CONTINUOUS_METRICS, DISPARITY_COLUMNS, METRIC_COLUMNS


def _config(**task: Any) -> dict[str, Any]:
    spec = {"name": "K", "kind": "continuous", "label": "k", "score": "k_hat",
            "cutpoints": [5.5], "tolerance": 0.5, **task}
    # closed-form intervals unless a test asks for the bootstrap (the default is B = 1000)
    return {"tasks": [spec], "attributes": {"race": {"reference": "White"}, "sex": {}},
            "intersections": "none", "patient_column": "patient_id", "bootstrap": 0}


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return make_synthetic_potassium(3000, seed=1)


@pytest.fixture(scope="module")
def result(cohort: pd.DataFrame):
    return audit(cohort, _config())


def test_config_contract() -> None:
    cfg = parse_config(_config())
    assert cfg.tasks[0].kind == "continuous" and cfg.tasks[0].cutpoints == (5.5,)
    with pytest.raises(ConfigError, match="needs a 'label'"):
        parse_config(_config(label=None))
    with pytest.raises(ConfigError, match="continuous"):
        parse_config({"tasks": [{"name": "a", "label": "y", "score": "p", "tolerance": 1}]})
    with pytest.raises(ConfigError, match="tolerance"):
        parse_config(_config(tolerance=-1))


def test_metric_rows_and_planted_bias(result, cohort: pd.DataFrame) -> None:
    m = result.metrics
    assert list(m.columns) == list(METRIC_COLUMNS)
    k = m[m.task == "K"]
    assert set(k.metric) == set(CONTINUOUS_METRICS)
    row = k[(k.attribute == "race") & (k.group == "Black") & (k.metric == "bias")].iloc[0]
    assert row.ci_low < 0.4 < row.ci_high and row.ci_method == "t"
    black = cohort[cohort.race == "Black"]
    assert row.estimate == pytest.approx(np.mean(black.k_hat - black.k))
    white = k[(k.group == "White") & (k.metric == "bias")].iloc[0]
    assert white.ci_low < 0 < white.ci_high


def test_disparities_and_multiplicity(result) -> None:
    d = result.disparities
    assert list(d.columns) == list(DISPARITY_COLUMNS)
    k = d[(d.task == "K") & (d.attribute == "race")]
    bias = k[(k.group == "Black") & (k.metric == "bias")].iloc[0]
    assert bias.difference_ci_low > 0.3 and bias.p_holm < 1e-6
    mae = k[(k.group == "Black") & (k.metric == "mae")].iloc[0]
    assert mae.ratio > 1.3 and mae.ratio_ci_low > 1.0
    tested = k[k.test != "none"]
    assert set(k.metric) - set(tested.metric) == {"r2"}  # r2: bootstrap only
    assert tested.p_holm.notna().all()
    assert (tested.p_holm >= tested.p_value - 1e-15).all()


def test_suppression_with_a_tiny_group(cohort: pd.DataFrame) -> None:
    df = cohort.copy()
    df.loc[df.index[:5], "race"] = "Tiny"
    res = audit(df, _config(cutpoints=[]))
    tiny = res.metrics[res.metrics.group == "Tiny"]
    assert len(tiny) and (tiny.status == "suppressed").all()
    assert tiny.estimate.isna().all() and tiny.n.isna().all()
    dt = res.disparities[res.disparities.group == "Tiny"]
    assert (dt.status == "suppressed").all() and dt.difference.isna().all()


def test_derived_cutpoint_task(result, cohort: pd.DataFrame) -> None:
    m = result.metrics
    cut = m[(m.task == "K>=5.5") & (m.attribute == "overall")].set_index("metric")
    y = cohort.k >= 5.5
    flag = cohort.k_hat >= 5.5
    assert cut.loc["sensitivity", "estimate"] == pytest.approx((flag & y).sum() / y.sum())
    assert cut.loc["specificity", "estimate"] == pytest.approx((~flag & ~y).sum() / (~y).sum())
    from sklearn.metrics import roc_auc_score
    assert cut.loc["auroc", "estimate"] == pytest.approx(roc_auc_score(y, cohort.k_hat))
    for metric in ("brier", "ece", "cal_slope", "cal_intercept", "oe_ratio"):
        assert cut.loc[metric, "status"] == "insufficient"
        assert cut.loc[metric, "reason"] == REASON_NOT_PROBABILITY
        assert math.isnan(cut.loc[metric, "estimate"])


def test_binary_only_config_unchanged(cohort: pd.DataFrame) -> None:
    df = cohort.assign(y=(cohort.k >= 5.0).astype(int),
                       p=np.clip((cohort.k_hat - 3) / 4, 0.01, 0.99))
    cfg = {"tasks": [{"name": "hk", "label": "y", "score": "p"}],
           "attributes": {"race": {"reference": "White"}}, "intersections": "none"}
    a = audit(df, cfg)
    b = audit(df, {**cfg, "tasks": [*cfg["tasks"], _config()["tasks"][0]]})
    pd.testing.assert_frame_equal(
        a.metrics.reset_index(drop=True),
        b.metrics[b.metrics.task == "hk"].reset_index(drop=True))


@pytest.mark.parametrize("bad,match", [
    ("text", "must be numbers"), ("inf", "finite"), ("missing", "missing"),
])
def test_bad_values_name_column_and_rows(cohort: pd.DataFrame, bad: str, match: str) -> None:
    df = cohort.head(200).copy()
    df["k_hat"] = df["k_hat"].astype(object)
    value = {"text": "high", "inf": np.inf, "missing": None}[bad]
    df.loc[[3, 7], "k_hat"] = value
    with pytest.raises(ValidationError, match=match) as err:
        audit(df, _config(cutpoints=[]))
    text = str(err.value)
    assert "k_hat" in text and "4" in text and "8" in text


def test_constant_predictions_and_units(cohort: pd.DataFrame) -> None:
    df = cohort.head(300).copy()
    with pytest.raises(ValidationError, match=r"every predicted value is 4\.5"):
        audit(df.assign(k_hat=4.5), _config(cutpoints=[]))
    with pytest.raises(ValidationError, match="different units") as err:
        audit(df.assign(k_hat=df.k_hat * 18), _config(cutpoints=[]))
    assert "convert" in str(err.value)
    with pytest.raises(ValidationError, match="cut-point 9"):
        audit(df, _config(cutpoints=[9.0]))


def test_bootstrap_intervals_and_reproducibility(cohort: pd.DataFrame) -> None:
    df = cohort.head(1500)
    cfg = {**_config(), "bootstrap": 200, "seed": 4}
    a = audit(df, cfg)
    b = audit(df, cfg)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    k = a.metrics[(a.metrics.task == "K") & (a.metrics.status == "ok")]
    assert (k.ci_method == "bootstrap-percentile").all()
    assert (k.ci_low < k.estimate).all() and (k.estimate < k.ci_high).all()
    d = a.disparities[(a.disparities.task == "K") & (a.disparities.metric == "r2")]
    assert (d.test == "bootstrap").all() and d.p_value.notna().all()


def test_gate_on_bias(result) -> None:
    policy = parse_policy({"rules": [
        {"metric": "bias", "max_abs": 0.2, "attributes": ["race"], "tasks": ["K"],
         "judge": "ci"},
        {"metric": "mae", "max_abs_difference": 0.1, "attributes": ["race"], "tasks": ["K"],
         "judge": "point"},
    ]}, result=result)
    gate = evaluate(result, policy)
    by = {(o.rule_id, o.group): o.outcome for o in gate.outcomes}
    assert by[("r1-bias-max_abs", "Black")] == "fail"
    assert by[("r1-bias-max_abs", "White")] == "pass"
    assert by[("r2-mae-max_abs_difference", "Black")] == "fail"
    with pytest.raises(ConfigError, match="Did you mean 'bias'"):
        parse_policy({"rules": [{"metric": "bais", "max": 1}]})


def test_continuous_only_with_bootstrap(cohort: pd.DataFrame) -> None:
    res = audit(cohort.head(600), {**_config(cutpoints=[]), "bootstrap": 50})
    assert set(res.metrics.task) == {"K"}
    ok = res.metrics[res.metrics.status == "ok"]
    assert len(ok) and (ok.ci_method == "bootstrap-percentile").all()


def test_bca_intervals(cohort: pd.DataFrame) -> None:
    cfg = {**_config(cutpoints=[]), "bootstrap": 200, "bootstrap_method": "bca"}
    res = audit(cohort.head(1200), cfg)
    k = res.metrics[(res.metrics.status == "ok") & (res.metrics.attribute != "overall")]
    assert (k.ci_method == "bootstrap-bca").all()
    inside = (k.ci_low <= k.estimate) & (k.estimate <= k.ci_high)
    assert inside.mean() > 0.95


def test_numpy_engine_gives_the_same_intervals(cohort: pd.DataFrame) -> None:
    cfg = {**_config(cutpoints=[]), "bootstrap": 30}
    a = audit(cohort.head(400), cfg).metrics
    b = audit(cohort.head(400), {**cfg, "engine": "numpy"}).metrics
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)
