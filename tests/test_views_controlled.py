"""Controlled disparities: pooled estimates against statsmodels / closed forms; a planted
site effect that makes a crude sex gap which disappears once site is controlled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import StratifiedTable
from statsmodels.stats.meta_analysis import combine_effects

import ecgaudit
from ecgaudit.disparity._pooled import (
    breslow_day,
    cmh_test,
    inverse_variance,
    mh_rate_difference,
    mh_rate_ratio,
)
from ecgaudit.errors import ConfigError

A = np.array([20.0, 35, 12, 7])
N1 = np.array([50.0, 60, 40, 30])
C = np.array([30.0, 20, 25, 9])
N0 = np.array([55.0, 45, 60, 33])


def _table() -> StratifiedTable:
    return StratifiedTable([np.array([[a, n1 - a], [c, n0 - c]])
                            for a, n1, c, n0 in zip(A, N1, C, N0)])


def test_cmh_and_breslow_day_match_statsmodels() -> None:
    st = _table()
    assert cmh_test(A, N1, C, N0) == pytest.approx(st.test_null_odds(correction=False).pvalue,
                                                   rel=1e-10)
    ref = st.test_equal_odds(adjust=True)
    stat, df, p = breslow_day(A, N1, C, N0)
    assert stat == pytest.approx(ref.statistic, rel=1e-8)
    assert p == pytest.approx(ref.pvalue, rel=1e-8)
    assert df == 3


def test_mh_risk_ratio_matches_statsmodels_and_katz_for_one_stratum() -> None:
    est, lo, hi = mh_rate_ratio(A, N1, C, N0)
    assert est == pytest.approx(_table().riskratio_pooled, rel=1e-12)
    assert lo < est < hi
    # One stratum: the Greenland-Robins variance reduces to Katz's 1/a - 1/n1 + 1/c - 1/n0.
    est1, lo1, hi1 = mh_rate_ratio(A[:1], N1[:1], C[:1], N0[:1])
    se = np.sqrt(1 / A[0] - 1 / N1[0] + 1 / C[0] - 1 / N0[0])
    assert np.log(hi1 / est1) == pytest.approx(1.959963984540054 * se, rel=1e-9)
    assert np.log(est1 / lo1) == pytest.approx(1.959963984540054 * se, rel=1e-9)


def test_mh_risk_difference_closed_forms() -> None:
    est, lo, hi = mh_rate_difference(A, N1, C, N0)
    w = N1 * N0 / (N1 + N0)
    assert est == pytest.approx(np.sum(w * (A / N1 - C / N0)) / w.sum(), rel=1e-12)
    assert lo < est < hi
    # One stratum: Sato's variance is the Wald variance of a difference of proportions.
    e1, lo1, hi1 = mh_rate_difference(A[:1], N1[:1], C[:1], N0[:1])
    p1, p0 = A[0] / N1[0], C[0] / N0[0]
    se = np.sqrt(p1 * (1 - p1) / N1[0] + p0 * (1 - p0) / N0[0])
    assert e1 == pytest.approx(p1 - p0)
    assert (hi1 - lo1) / 2 == pytest.approx(1.959963984540054 * se, rel=1e-9)


def test_inverse_variance_matches_statsmodels_fixed_effect() -> None:
    d = np.array([0.05, -0.02, 0.1, 0.03])
    v = np.array([0.001, 0.002, 0.0015, 0.003])
    res = combine_effects(d, v, method_re="chi2")
    fe = res.summary_frame().loc["fixed effect"]
    got = inverse_variance(d, v)
    assert got.estimate == pytest.approx(fe["eff"], rel=1e-12)
    assert got.ci_low == pytest.approx(fe["ci_low"], rel=1e-9)
    assert got.ci_high == pytest.approx(fe["ci_upp"], rel=1e-9)
    assert got.heterogeneity == pytest.approx(res.q, rel=1e-12)
    assert got.i2 == pytest.approx(res.i2, rel=1e-12)
    assert got.heterogeneity_df == 3


def site_confounded_cohort(n: int = 6000, seed: int = 11) -> pd.DataFrame:
    """Sex has no effect within a site; site B (70% women) scores lower and ranks worse."""
    rng = np.random.default_rng(seed)
    site = rng.choice(["A", "B"], n)
    female = rng.random(n) < np.where(site == "B", 0.7, 0.3)
    y = (rng.random(n) < 0.3).astype(int)
    sep = np.where(site == "B", 1.2, 2.4)
    shift = np.where(site == "B", -0.8, 0.0)
    z = -0.5 + shift + sep * (y - 0.5) + rng.normal(size=n)
    return pd.DataFrame({"id": np.arange(n), "y": y, "p": 1 / (1 + np.exp(-z)),
                         "sex": np.where(female, "female", "male"), "site": site})


def _config(**extra) -> dict:
    return {"tasks": [{"name": "t", "label": "y", "score": "p"}],
            "attributes": {"sex": {"reference": "male"}, "site": {}},
            "intersections": "none", "threshold": {"rule": "fixed", "value": 0.35},
            "control": ["site"], **extra}


@pytest.fixture(scope="module")
def confounded():
    return ecgaudit.audit(site_confounded_cohort(), _config())


def test_site_effect_makes_a_crude_sex_gap_that_control_removes(confounded) -> None:
    crude = confounded.disparities.set_index(["attribute", "group", "metric"])
    ctrl = pd.DataFrame(confounded.extras["controlled_disparities"]).set_index(
        ["attribute", "group", "metric"])
    for metric in ("auroc", "sensitivity"):
        c = crude.loc[("sex", "female", metric)]
        k = ctrl.loc[("sex", "female", metric)]
        assert c.difference_ci_high < 0  # crude: women look worse
        assert k.difference_ci_low < 0 < k.difference_ci_high  # controlled: no gap
        assert abs(k.difference) < abs(c.difference) / 3
        assert k.control == "site" and k.n_strata == 2
        assert k.heterogeneity_p > 0.01  # the (absent) sex effect is the same in both sites
    assert ctrl.loc[("sex", "female", "auroc")].test == "inverse-variance-z"
    assert ctrl.loc[("sex", "female", "sensitivity")].test == "cmh"
    # The control attribute itself is not compared within its own strata.
    assert "site" not in set(ctrl.index.get_level_values(0))


def test_controlled_rows_keep_the_disparity_contract(confounded, tmp_path) -> None:
    rows = pd.DataFrame(confounded.extras["controlled_disparities"])
    from ecgaudit.schema import DISPARITY_COLUMNS

    assert list(rows.columns[:len(DISPARITY_COLUMNS)]) == list(DISPARITY_COLUMNS)
    assert rows.p_holm.notna().all() and (rows.p_holm >= rows.p_value).all()
    assert list(confounded.disparities.columns) == list(DISPARITY_COLUMNS)
    paths = confounded.save(tmp_path)
    assert len(pd.read_csv(paths["controlled_disparities"])) == len(rows)


def test_small_groups_are_suppressed_and_heterogeneity_is_detected() -> None:
    df = site_confounded_cohort(3000)
    # A real sex effect in site B only: heterogeneity across sites.
    rng = np.random.default_rng(2)
    b_women = ((df.site == "B") & (df.sex == "female")).to_numpy()
    df.loc[b_women, "p"] = np.clip(df.loc[b_women, "p"] + 0.25 * rng.random(b_women.sum()),
                                   0, 1)
    res = ecgaudit.audit(df, _config())
    rows = pd.DataFrame(res.extras["controlled_disparities"]).set_index(["group", "metric"])
    assert rows.loc[("female", "flag_rate")].heterogeneity_p < 0.001
    # A 5-patient group is withheld, and so is its complement (the crude table's rule):
    # every controlled comparison of either has no numbers.
    df.loc[:4, "sex"] = "other"
    res = ecgaudit.audit(df, _config())
    rows = pd.DataFrame(res.extras["controlled_disparities"]).set_index(["group", "metric"])
    crude = res.metrics.set_index(["attribute", "group", "metric"])
    other = rows.loc["other"]
    assert (other.status == "suppressed").all()
    assert other.difference.isna().all() and other.n_strata.isna().all()
    for (group, metric), row in rows.iterrows():
        if crude.loc[("sex", group, metric), "status"] == "suppressed":
            assert row.status == "suppressed" and pd.isna(row.difference)


def test_unknown_control_attribute_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"control.*'sitex'.*Did you mean 'site'"):
        ecgaudit.audit(site_confounded_cohort(100), _config(control=["sitex"]))


def test_pooled_intervals_cover_a_planted_common_effect() -> None:
    """Coverage of the 95% intervals when every stratum has the same true effect."""
    from scipy.stats import norm

    from ecgaudit.metrics import delong_auc_variance

    rng = np.random.default_rng(2024)
    p0 = np.array([0.2, 0.35, 0.5, 0.6])
    n1, n0 = np.array([60, 90, 120, 150]), np.array([150, 100, 80, 60])
    reps, hit_rd, hit_rr = 1000, 0, 0
    for _ in range(reps):
        c = rng.binomial(n0, p0)
        _, lo, hi = mh_rate_difference(rng.binomial(n1, p0 + 0.1), n1, c, n0)
        hit_rd += lo <= 0.1 <= hi
        _, lo, hi = mh_rate_ratio(rng.binomial(n1, p0 * 1.3), n1, c, n0)
        hit_rr += lo <= 1.3 <= hi
    assert 0.93 <= hit_rd / reps <= 0.97
    assert 0.93 <= hit_rr / reps <= 0.97
    true_diff = norm.cdf(1.5 / np.sqrt(2)) - norm.cdf(2.0 / np.sqrt(2))
    hit_auc = 0
    for _ in range(300):
        d, v = [], []
        for n in (80, 120, 160):
            pairs = []
            for sep in (1.5, 2.0):
                y = (rng.random(n) < 0.4).astype(int)
                pairs.append(delong_auc_variance(y, rng.normal(sep * y, 1.0)))
            d.append(pairs[0][0] - pairs[1][0])
            v.append(pairs[0][1] + pairs[1][1])
        pooled = inverse_variance(np.array(d), np.array(v))
        hit_auc += pooled.ci_low <= true_diff <= pooled.ci_high
    assert 0.91 <= hit_auc / 300 <= 0.98
