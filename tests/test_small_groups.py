"""Small-group statistics: boundary-safe intervals, tests, design effects, multiplicity.

References: statsmodels (Wilson, Newcombe, cluster-robust variance, Logit), scipy (Poisson,
root finding) and the defining equations of each method, written out here independently.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import brentq
from scipy.special import logit
from scipy.stats import poisson
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

import ecgaudit
from ecgaudit.config import parse_config
from ecgaudit.disparity import adjust_pvalues, compare_groups, holm
from ecgaudit.metrics import group_stats, logistic_recalibration
from ecgaudit.metrics._bootci import bca_limits, interval_p_value, percentile_limits
from ecgaudit.metrics._calibration import calibration_logit
from ecgaudit.metrics._calsuite import calibration_suite
from ecgaudit.metrics._cluster import auroc_design_effect, rate_design_effects
from ecgaudit.metrics._delong import delong_auc_variance
from ecgaudit.metrics._smallsample import (
    auc_score_limits,
    inverted_p_value,
    mover_difference,
    mover_ratio,
    poisson_ratio_limits,
    wilson_limits,
    z_of,
)
from ecgaudit.pipeline._bootstrap import AUTO_BIN_ROW_TASKS, choose_bins

Z = z_of(0.95)


@pytest.mark.parametrize("n", [5, 9, 16, 40, 120])
def test_wilson_matches_statsmodels_and_is_never_degenerate(n: int) -> None:
    k = np.arange(n + 1)
    lo, hi = wilson_limits(k, n, Z, modified=False)
    ref = np.array([proportion_confint(int(x), n, method="wilson") for x in k])
    np.testing.assert_allclose(lo, ref[:, 0], atol=1e-12)
    np.testing.assert_allclose(hi, ref[:, 1], atol=1e-12)
    mlo, mhi = wilson_limits(k, n, Z)
    assert np.all(mhi - mlo > 0) and np.all(mlo <= lo) and np.all(mhi >= hi)
    # Brown-Cai-DasGupta: with 1 event the lower limit is the exact Poisson one.
    assert mlo[1] == pytest.approx(poisson_ratio_limits(1, n, 0.95)[0], rel=1e-9)


def test_newcombe_difference_matches_statsmodels() -> None:
    for k1, n1, k2, n2 in [(0, 16, 71, 616), (16, 16, 65, 65), (5, 20, 30, 60), (9, 9, 3, 50)]:
        lo, hi = mover_difference(k1 / n1, *wilson_limits(k1, n1, Z, modified=False),
                                  k2 / n2, *wilson_limits(k2, n2, Z, modified=False))
        ref = confint_proportions_2indep(k1, n1, k2, n2, compare="diff", method="newcomb")
        assert (lo, hi) == pytest.approx(ref, abs=1e-10)
        assert hi - lo > 0


def test_mover_ratio_limits_solve_their_defining_equation() -> None:
    cases = [(0, 16, 71, 616), (3, 20, 10, 40), (20, 20, 30, 40), (1, 9, 2, 300)]
    for k1, n1, k2, n2 in cases:
        e1, e2 = k1 / n1, k2 / n2
        l1, u1 = wilson_limits(k1, n1, Z)
        l2, u2 = wilson_limits(k2, n2, Z)
        lo, hi = (float(v) for v in mover_ratio(e1, l1, u1, e2, l2, u2))
        r = e1 / e2
        assert lo <= r <= hi and hi > lo
        # At the limits, the MOVER interval of e1 - r e2 ends exactly at 0.
        if e1 > 0:
            assert (e1 - lo * e2) - np.sqrt((e1 - l1) ** 2 + lo**2 * (u2 - e2) ** 2) == (
                pytest.approx(0.0, abs=1e-12))
        else:
            assert lo == 0.0
        assert (e1 - hi * e2) + np.sqrt((u1 - e1) ** 2 + hi**2 * (e2 - l2) ** 2) == (
            pytest.approx(0.0, abs=1e-12))
    # A zero reference leaves the ratio undefined.
    assert np.isnan(mover_ratio(0.2, 0.1, 0.3, 0.0, 0.0, 0.1)[0])


def test_issue_example_fpr_zero_ratio_contains_its_estimate() -> None:
    rng = np.random.default_rng(0)
    y_g = np.zeros(16, int)
    p_g = rng.uniform(0, 0.2, 16)
    y_r = np.r_[np.zeros(616, int), np.ones(50, int)]
    p_r = np.r_[np.r_[np.full(71, 0.9), np.full(545, 0.1)], np.full(50, 0.8)]
    g = group_stats(np.r_[y_g, [1, 1]], np.r_[p_g, [0.9, 0.9]], 0.5)
    r = group_stats(y_r, p_r, 0.5)
    row = {x["metric"]: x for x in compare_groups(g, r)}["fpr"]
    assert row["ratio"] == 0.0
    assert row["ratio_ci_low"] == 0.0 < row["ratio_ci_high"]
    assert row["difference_ci_low"] < row["difference"] <= row["difference_ci_high"]


def _hm_newcombe(theta: float, m: int, n: int) -> float:
    ns = (m + n) / 2
    return theta * (1 - theta) / (m * n) * (
        1 + (ns - 1) * ((1 - theta) / (2 - theta) + theta / (1 + theta)))


@pytest.mark.parametrize(("auc", "m", "n"), [(1.0, 9, 7), (0.95, 12, 20), (0.5, 30, 30),
                                             (0.0, 5, 5), (0.8, 200, 300)])
def test_auroc_score_interval_solves_newcombe_method_5(auc: float, m: int, n: int) -> None:
    lo, hi = (float(v) for v in auc_score_limits(auc, m, n, Z))

    def f(t: float) -> float:
        return (auc - t) ** 2 - Z * Z * _hm_newcombe(t, m, n)

    ref_lo = 0.0 if auc == 0 else brentq(f, 1e-12, auc - 1e-12 if auc < 1 else 1 - 1e-12)
    ref_hi = 1.0 if auc == 1 else brentq(f, auc + 1e-12 if auc > 0 else 1e-12, 1 - 1e-12)
    assert lo == pytest.approx(ref_lo, abs=1e-9) and hi == pytest.approx(ref_hi, abs=1e-9)
    assert hi - lo > 0.0
    wider = auc_score_limits(auc, m, n, Z, deff=2.0)
    assert wider[0] <= lo and wider[1] >= hi


def test_poisson_limits_are_exact() -> None:
    for o, e in [(0, 2.5), (3, 4.0), (12, 10.0)]:
        lo, hi = (float(v) for v in poisson_ratio_limits(o, e, 0.95))
        assert poisson.cdf(o, hi * e) == pytest.approx(0.025, abs=1e-9)
        if o > 0:
            assert poisson.sf(o - 1, lo * e) == pytest.approx(0.025, abs=1e-9)
        else:
            assert lo == 0.0


def test_inverted_p_agrees_with_the_interval_and_mirrors_sensitivity_fnr() -> None:
    rng = np.random.default_rng(5)
    k1, n1 = rng.integers(0, 20, 200), np.full(200, 20)
    k2, n2 = rng.integers(0, 60, 200), np.full(200, 60)

    def limits(z: np.ndarray, a: np.ndarray = k1, b: np.ndarray = k2) -> tuple:
        return mover_difference(a / n1, *wilson_limits(a, n1, z), b / n2,
                                *wilson_limits(b, n2, z))

    p = inverted_p_value(k1 / n1 - k2 / n2, limits)
    for level in (0.9, 0.95, 0.99):
        lo, hi = limits(np.full(200, z_of(level)))
        assert np.array_equal((lo > 0) | (hi < 0), p < 1 - level)
    p_fnr = inverted_p_value((n1 - k1) / n1 - (n2 - k2) / n2,
                             lambda z: limits(z, n1 - k1, n2 - k2))
    np.testing.assert_allclose(p, p_fnr, rtol=1e-9)


def test_bootstrap_p_agrees_with_percentile_and_bca_intervals() -> None:
    rng = np.random.default_rng(2)
    reps = rng.normal(rng.normal(0, 0.1, 40), 0.1, (500, 40))
    reps[:, :10] = np.round(reps[:, :10], 1)  # ties at 0
    est = reps.mean(axis=0) + 0.01
    accel = rng.normal(0, 0.05, 40)
    for level in (0.9, 0.95):
        lo, hi = percentile_limits(reps, level)
        assert np.array_equal((lo > 0) | (hi < 0), interval_p_value(reps) < 1 - level)
        lo, hi = bca_limits(reps, est, accel, level)
        ok = np.isfinite(lo)
        p = interval_p_value(reps, est, accel)
        assert np.array_equal(((lo > 0) | (hi < 0))[ok], (p < 1 - level)[ok])
    # Beyond what the replicates resolve, the normal tail (capped below the threshold).
    far = rng.normal(1.0, 0.1, (1000, 1))
    p = interval_p_value(far, point=np.array([1.0]), tail=0.02)
    assert 0 < p[0] < 1e-10


def _cluster_table(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    patient = rng.integers(0, n // 3, n)
    shared = rng.normal(size=n // 3)[patient]
    y = (rng.random(n) < 0.4).astype(int)
    p = 1 / (1 + np.exp(-(shared + rng.normal(size=n) + 1.5 * y)))
    return y, p, patient


def test_rate_design_effect_is_the_cluster_robust_variance_ratio() -> None:
    y, p, patient = _cluster_table(np.random.default_rng(1), 600)
    flag = p >= 0.5
    codes = np.zeros(600, int)
    deff = rate_design_effects(y, flag, codes, 1, patient)["sensitivity"][0]
    pos = y == 1
    ols = sm.OLS(flag[pos].astype(float), np.ones(pos.sum())).fit(
        cov_type="cluster", cov_kwds={"groups": patient[pos]})
    phat = flag[pos].mean()
    assert deff == pytest.approx(max(1.0, ols.bse[0] ** 2 / (phat * (1 - phat) / pos.sum())),
                                 rel=1e-9)
    # Boundary: no information on the correlation -> the perfect-correlation bound.
    all_flagged = rate_design_effects(y, np.ones(600, bool), codes, 1, patient)["sensitivity"]
    sizes = np.bincount(patient[pos])
    assert all_flagged[0] == pytest.approx((sizes**2).sum() / pos.sum())


def _obuchowski(y: np.ndarray, p: np.ndarray, patient: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    v10 = np.array([np.mean((neg < s) + 0.5 * (neg == s)) for s in pos])
    v01 = np.array([np.mean((pos > s) + 0.5 * (pos == s)) for s in neg])
    a = v10.mean()
    m_, n_ = pos.size, neg.size
    ids = np.unique(patient)
    x = np.array([v10[patient[y == 1] == i].sum() for i in ids])
    z = np.array([v01[patient[y == 0] == i].sum() for i in ids])
    mk = np.array([np.sum(patient[y == 1] == i) for i in ids])
    nk = np.array([np.sum(patient[y == 0] == i) for i in ids])
    i10, i01, k = (mk > 0).sum(), (nk > 0).sum(), ids.size
    s10 = i10 / ((i10 - 1) * m_) * np.sum((x - mk * a) ** 2)
    s01 = i01 / ((i01 - 1) * n_) * np.sum((z - nk * a) ** 2)
    s11 = k / (k - 1) * np.sum((x - mk * a) * (z - nk * a))
    return s10 / m_ + s01 / n_ + 2 * s11 / (m_ * n_)


def test_auroc_design_effect_is_obuchowski_over_delong() -> None:
    y, p, patient = _cluster_table(np.random.default_rng(3), 300)
    deff = auroc_design_effect(y, p, np.zeros(300, int), 1, patient)[0]
    var_dl = delong_auc_variance(y, p)[1]
    assert deff == pytest.approx(max(1.0, _obuchowski(y, p, patient) / var_dl), rel=1e-9)
    # One ECG per patient: Obuchowski is DeLong.
    singles = auroc_design_effect(y, p, np.zeros(300, int), 1, np.arange(300))
    assert _obuchowski(y, p, np.arange(300)) == pytest.approx(var_dl, rel=1e-9)
    assert singles[0] == 1.0


def test_constant_scores_are_insufficient_for_auroc_with_a_reason() -> None:
    y = np.r_[np.ones(20, int), np.zeros(30, int)]
    s = group_stats(y, np.full(50, 0.3), 0.5)
    assert s.values["auroc"].status == "insufficient"
    assert "same value" in s.values["auroc"].reason


def test_calibration_suite_on_constant_scores_is_the_calibration_in_the_large() -> None:
    y = (np.random.default_rng(0).random(300) < 0.31).astype(int)
    out = calibration_suite(y, np.full(300, 0.3))
    for key in ("ici", "e50", "e90", "emax"):
        assert out[key] == pytest.approx(abs(y.mean() - 0.3), abs=1e-12)


def test_intersection_suite_fit_is_close_to_the_exact_fit() -> None:
    from ecgaudit.pipeline._extras import INTERSECTION_FIT

    rng = np.random.default_rng(6)
    p = rng.beta(0.5, 4, 3000)
    y = (rng.random(3000) < np.clip(1.3 * p - 0.05, 0, 1)).astype(int)
    exact, grid = calibration_suite(y, p), calibration_suite(y, p, **INTERSECTION_FIT)
    assert max(abs(exact[k] - grid[k]) for k in exact) < 1e-4


def test_default_clip_touches_only_saturated_scores_and_matches_statsmodels() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(0, 6, 400)
    p = 1 / (1 + np.exp(-x))  # many scores below 1e-6 and above 1 - 1e-6, none saturated
    y = (rng.random(400) < 1 / (1 + np.exp(-(0.3 + 0.8 * x)))).astype(int)
    assert (p < 1e-6).any() and (p > 0).all() and (p < 1).all()
    fit = logistic_recalibration(y, p)
    ref = sm.Logit(y, sm.add_constant(logit(p))).fit(disp=0, tol=1e-12)
    assert (fit.intercept, fit.slope) == pytest.approx(tuple(ref.params), rel=1e-7)
    sat = np.r_[p, 0.0, 1.0]
    cx = calibration_logit(sat)
    assert np.array_equal(cx[:-2], logit(p))  # unsaturated logits untouched
    assert cx[-2] <= cx[:-2].min() and cx[-1] >= cx[:-2].max()  # order kept


def test_multiplicity_counts_mirror_rows_once_and_families_are_configurable() -> None:
    base = {"task": "t", "attribute": "sex", "reference": "male", "difference": 0.1}
    rows = []
    for g, ps in (("female", 0.01), ("other", 0.04)):
        for metric, p in (("sensitivity", ps), ("fnr", ps), ("auroc", ps / 2),
                          ("brier", np.nan)):
            rows.append({**base, "group": g, "metric": metric, "p_value": p})
    table = pd.DataFrame(rows)
    out = adjust_pvalues(table)
    distinct = np.array([0.01, 0.005, 0.04, 0.02, 1.0, 1.0])  # untested rows count as p=1
    expected = holm(distinct)
    got = out.set_index(["group", "metric"])["p_holm"]
    assert got[("female", "sensitivity")] == got[("female", "fnr")] == pytest.approx(
        expected[0])
    assert got[("other", "auroc")] == pytest.approx(expected[3])
    assert np.isnan(got[("female", "brier")])
    two = pd.concat([table, table.assign(task="u")])
    assert adjust_pvalues(two, "task")["p_holm"].iloc[0] == pytest.approx(expected[0])
    assert adjust_pvalues(two, "run")["p_holm"].iloc[0] > expected[0]
    with pytest.raises(ValueError, match="family"):
        adjust_pvalues(table, "galaxy")
    assert parse_config({"tasks": [{"name": "a", "label": "y", "score": "p"}],
                         "multiplicity": {"family": "attribute"}}).multiplicity.family == (
        "attribute")


def test_auto_bins_and_defaults() -> None:
    cfg = parse_config({"tasks": [{"name": "a", "label": "y", "score": "p"}]})
    assert cfg.bootstrap == 1000 and cfg.bootstrap_bins == "auto" and cfg.calibration.clip == 0
    assert choose_bins(cfg, 1000, 5)["bins"] is None
    assert choose_bins(cfg, AUTO_BIN_ROW_TASKS, 2)["bins"] == 4096
    exact = cfg.model_copy(update={"bootstrap_bins": "exact"})
    assert choose_bins(exact, 10**6, 5)["bins"] is None
    off = cfg.model_copy(update={"bootstrap": 0})
    assert choose_bins(off, 10**6, 5)["bins"] is None


def _boundary_cohort() -> pd.DataFrame:
    rng = np.random.default_rng(8)
    n = 400
    site = np.where(np.arange(n) < 40, "small", "big")
    y = (rng.random(n) < 0.3).astype(int)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.15), 0.001, 0.999)
    small = site == "small"
    p[small] = np.where(y[small] == 1, 0.95, 0.05)  # perfect: rates and AUROC at 1
    return pd.DataFrame({"id": np.arange(n), "pid": np.arange(n) // 2, "site": site,
                         "y": y, "p": p, "sex": rng.choice(["f", "m"], n)})


def test_audit_has_no_zero_width_interval_and_is_deterministic(tmp_path) -> None:
    frame = _boundary_cohort()
    cfg = {"tasks": [{"name": "t", "label": "y", "score": "p"}], "patient_column": "pid",
           "attributes": {"site": {"reference": "big"}, "sex": {}}, "bootstrap": 200,
           "seed": 4, "threshold": {"rule": "fixed", "value": 0.5}}
    res = ecgaudit.audit(frame, cfg)
    m, d = res.metrics, res.disparities
    assert not ((m.ci_low == m.ci_high) & m.ci_low.notna()).any()
    assert not ((d.difference_ci_low == d.difference_ci_high) & d.difference_ci_low.notna()).any()
    assert not ((d.ratio_ci_low == d.ratio_ci_high) & d.ratio_ci_low.notna()).any()
    small = m[(m.group == "small")].set_index("metric")
    assert small.loc["auroc", "estimate"] == 1.0 and small.loc["auroc", "ci_low"] < 1.0
    assert small.loc["sensitivity", "ci_method"] == "wilson-clustered"
    assert small.loc["auprc", "ci_method"] == "wilson-ap-clustered-fallback"
    assert "collapsed" in small.loc["auprc", "reason"]
    key = ["attribute", "group"]
    sens = m[m.metric == "sensitivity"].set_index(key)
    fnr = m[m.metric == "fnr"].set_index(key).loc[sens.index]
    np.testing.assert_allclose(sens.ci_low, 1 - fnr.ci_high, atol=1e-12)  # mirrored
    # rows withheld for privacy (docs/small-groups.md, Suppression) carry no test
    rate_rows = d[d.metric.isin(["sensitivity", "auroc"]) & (d.status != "suppressed")]
    assert set(rate_rows.test) <= {"newcombe-inverted-clustered",
                                   "mover-score-inverted-clustered"}
    boot_rows = d[d.metric.isin(["brier", "ece"]) & d.p_value.notna()]
    assert (boot_rows.test == "bootstrap").all() and len(boot_rows) > 0
    excl = (d.difference_ci_low > 0) | (d.difference_ci_high < 0)
    tested = d.p_value.notna()
    assert ((d.p_value < 0.05) == excl)[tested].all()
    assert "bootstrap_bins" in res.manifest
    suite = res.extras["calibration_suite"]
    assert any(" & " in r["attribute"] for r in suite)  # intersections included
    a, b = tmp_path / "a", tmp_path / "b"
    res.save(a)
    ecgaudit.audit(frame, cfg).save(b)
    assert (a / "results.json").read_bytes() == (b / "results.json").read_bytes()
    assert json.loads((a / "results.json").read_text())["manifest"]["config"]["bootstrap"] == 200


def test_inverted_p_has_a_conservative_tail_and_still_agrees_with_the_interval() -> None:
    """A method whose limit creeps towards 0 (as a small group's score interval does near 1)
    would give an inverted p of ~1e-19; the reported p is the near-side normal p instead."""
    from scipy.stats import norm

    d = np.array([-0.3, -0.1, 0.3])

    def limits(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        slow = 0.1 * np.sqrt(z)  # half-width growing like sqrt(z): a light tail
        return d - 0.1 * z, d + slow

    plain = inverted_p_value(d, limits)
    p = inverted_p_value(d, limits, level=0.95)
    assert plain[0] < 1e-15  # the bare inversion: z* = 9
    near = np.where(d > 0, 0.1 * Z, 0.1 * np.sqrt(Z))  # half-width facing 0 at 95%
    expected = 2 * norm.sf(np.abs(d) * Z / near)
    np.testing.assert_allclose(p[:2], np.maximum(plain, expected)[:2], rtol=1e-9)
    assert p[0] > 1e-6  # not the light tail's 1e-19
    low, high = limits(np.full(3, Z))
    excludes = (low > 0) | (high < 0)
    assert ((p < 0.05) == excludes).all()  # still agrees with the reported interval
