"""Every point estimate against an independent reference, on real and synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from fairlearn.metrics import MetricFrame
from scipy.special import logit
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    roc_auc_score,
)

import ecgaudit
from ecgaudit.metrics import auprc, auroc, brier, ece, logistic_recalibration, oe_ratio
from tests.conftest import synthetic_config

TASKS = ["NORM", "AFIB", "LVH", "IMI", "CLBBB", "CRBBB"]


@pytest.fixture(scope="module")
def ptbxl_result(ptbxl_paths):
    # min_cell_size 1: the reference checks see every number (small-cell suppression, which
    # withholds e.g. CLBBB's overall rates with < 11 misses, is tested in its own files)
    config = ecgaudit.load_config(ptbxl_paths["config"]).model_copy(
        update={"bootstrap": 0, "min_cell_size": 1})
    return ecgaudit.audit_files(ptbxl_paths["predictions"], config,
                                metadata=ptbxl_paths["metadata"])


def _est(result, task, attribute, group, metric):
    m = result.metrics
    row = m[(m.task == task) & (m.attribute == attribute) & (m.group == group)
            & (m.metric == metric)]
    assert len(row) == 1
    return float(row.estimate.iloc[0])


@pytest.mark.parametrize("task", TASKS)
def test_overall_estimates_match_sklearn_on_ptbxl(ptbxl_result, ptbxl_frame, task):
    y = ptbxl_frame[f"label:{task}"].to_numpy()
    p = ptbxl_frame[f"score:{task}"].to_numpy()
    assert _est(ptbxl_result, task, "overall", "all", "auroc") == pytest.approx(
        roc_auc_score(y, p), abs=1e-12)
    assert _est(ptbxl_result, task, "overall", "all", "auprc") == pytest.approx(
        average_precision_score(y, p), abs=1e-12)
    assert _est(ptbxl_result, task, "overall", "all", "brier") == pytest.approx(
        brier_score_loss(y, p), abs=1e-12)
    t = ptbxl_result.manifest["thresholds"][task]["value"]
    tn, fp, fn, tp = confusion_matrix(y, p >= t).ravel()
    assert _est(ptbxl_result, task, "overall", "all", "sensitivity") == pytest.approx(tp / (tp + fn))
    assert _est(ptbxl_result, task, "overall", "all", "specificity") == pytest.approx(tn / (tn + fp))
    assert _est(ptbxl_result, task, "overall", "all", "ppv") == pytest.approx(tp / (tp + fp))
    assert _est(ptbxl_result, task, "overall", "all", "npv") == pytest.approx(tn / (tn + fn))
    assert _est(ptbxl_result, task, "overall", "all", "flag_rate") == pytest.approx(
        (tp + fp) / len(y))


def test_threshold_rule_is_frozen_and_meets_target(ptbxl_result, ptbxl_frame):
    for task in TASKS:
        th = ptbxl_result.manifest["thresholds"][task]
        assert th["rule"] == "sensitivity" and th["target"] == 0.9
        sens = _est(ptbxl_result, task, "overall", "all", "sensitivity")
        assert sens >= 0.9
        y = ptbxl_frame[f"label:{task}"].to_numpy()
        p = ptbxl_frame[f"score:{task}"].to_numpy()
        higher = np.unique(p[p > th["value"]])
        if higher.size:  # the next higher threshold would miss the target
            assert np.mean(p[y == 1] >= higher.min()) < 0.9


def test_group_estimates_match_fairlearn_metricframe(ptbxl_result, ptbxl_frame):
    task = "NORM"
    y = ptbxl_frame[f"label:{task}"]
    p = ptbxl_frame[f"score:{task}"]
    sex = ptbxl_frame["sex"]
    t = ptbxl_result.manifest["thresholds"][task]["value"]
    mf = MetricFrame(
        metrics={"auroc": roc_auc_score, "brier": brier_score_loss,
                 "sensitivity": lambda a, b: np.mean(b[a == 1] >= t)},
        y_true=y, y_pred=p, sensitive_features=sex,
    )
    for group in ("female", "male"):
        for metric in ("auroc", "brier", "sensitivity"):
            assert _est(ptbxl_result, task, "sex", group, metric) == pytest.approx(
                mf.by_group.loc[group, metric], abs=1e-12)


def test_calibration_fit_matches_statsmodels_on_saturated_real_scores(ptbxl_frame):
    y = ptbxl_frame["label:NORM"].to_numpy()
    p = ptbxl_frame["score:NORM"].to_numpy()
    assert (p == 1.0).any(), "the real NORM scores include saturated 1.0 values"
    clip = 1e-6
    x = logit(np.clip(p, clip, 1 - clip))
    ref = sm.Logit(y, sm.add_constant(x)).fit(disp=0, tol=1e-12, maxiter=200)
    fit = logistic_recalibration(y, p, clip=clip)
    assert fit.converged
    assert fit.intercept == pytest.approx(ref.params[0], abs=1e-7)
    assert fit.slope == pytest.approx(ref.params[1], abs=1e-7)


def test_calibration_of_a_perfectly_calibrated_model_is_identity():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.99, 200_000)
    y = (rng.random(p.size) < p).astype(int)
    fit = logistic_recalibration(y, p)
    assert fit.slope == pytest.approx(1.0, abs=0.03)
    assert fit.intercept == pytest.approx(0.0, abs=0.03)
    assert oe_ratio(y, p) == pytest.approx(1.0, abs=0.01)
    assert ece(y, p) < 0.01


def test_ece_closed_form_small_case():
    # 4 rows, 2 equal-mass bins: {0.1, 0.2} with y {0, 1}; {0.7, 0.9} with y {1, 1}
    y = np.array([1, 0, 1, 1])
    p = np.array([0.2, 0.1, 0.9, 0.7])
    expected = 0.5 * abs(0.5 - 0.15) + 0.5 * abs(1.0 - 0.8)
    assert ece(y, p, n_bins=2) == pytest.approx(expected)


def test_functions_return_nan_not_a_number_for_single_class():
    y = np.zeros(5, dtype=int)
    p = np.linspace(0, 1, 5)
    assert np.isnan(auroc(y, p))
    assert np.isnan(auprc(y, p))
    assert not logistic_recalibration(y, p).converged
    assert brier(y, p) == pytest.approx(np.mean(p**2))


def test_synthetic_group_estimates_match_sklearn(synthetic):
    result = ecgaudit.audit(synthetic, synthetic_config())
    m = result.metrics
    for race, sub in synthetic.groupby("race"):
        row = m[(m.task == "hf") & (m.attribute == "race") & (m.group == race)
                & (m.metric == "auroc")]
        assert float(row.estimate.iloc[0]) == pytest.approx(
            roc_auc_score(sub.y_hf, sub.p_hf), abs=1e-12)
        assert int(row.n.iloc[0]) == len(sub)
    # intersections: the finest cells, same numbers as a pandas groupby
    inter = m[(m.task == "af") & (m.attribute == "race & sex") & (m.metric == "auprc")
              & (m.status != "suppressed")]
    assert len(inter) > 5
    for _, row in inter.iterrows():
        race, sex = row.group.split(" & ")
        sub = synthetic[(synthetic.race.fillna("Unknown") == race) & (synthetic.sex == sex)]
        assert row.estimate == pytest.approx(average_precision_score(sub.y_af, sub.p_af),
                                             abs=1e-12)


def test_group_counts_add_up_to_overall(synthetic):
    result = ecgaudit.audit(synthetic, synthetic_config(min_cell_size=1))
    m = result.metrics[(result.metrics.metric == "auroc") & (result.metrics.task == "hf")]
    for attribute in ("race", "sex", "age", "race & sex", "race & age", "sex & age"):
        assert m[m.attribute == attribute].n.sum() == len(synthetic)
    assert "Unknown" in set(m[m.attribute == "race"].group)


def test_disparity_arithmetic_matches_group_rows(synthetic):
    result = ecgaudit.audit(synthetic, synthetic_config())
    m = result.metrics.set_index(["task", "attribute", "group", "metric"]).estimate
    d = result.disparities
    ok = d[d.status.isin(["ok", "unstable"])]
    assert len(ok) > 100
    for _, row in ok.sample(50, random_state=0).iterrows():
        g = m[(row.task, row.attribute, row.group, row.metric)]
        r = m[(row.task, row.attribute, row.reference, row.metric)]
        assert row.difference == pytest.approx(g - r, abs=1e-12)
        if r != 0:
            assert row.ratio == pytest.approx(g / r, rel=1e-12)


def test_planted_disparity_is_detected(synthetic):
    result = ecgaudit.audit(synthetic, synthetic_config())
    d = result.disparities
    black = d[(d.task == "hf") & (d.attribute == "race") & (d.group == "Black")
              & (d.metric == "auroc")].iloc[0]
    assert black.difference < -0.05
    assert black.difference_ci_high < 0
    assert black.p_holm < 0.05
    hisp = d[(d.task == "hf") & (d.attribute == "race") & (d.group == "Hispanic")
             & (d.metric == "auroc")].iloc[0]
    assert hisp.difference_ci_low < 0 < hisp.difference_ci_high


def test_prevalence_derivable_and_types(synthetic):
    result = ecgaudit.audit(synthetic, synthetic_config())
    m = result.metrics
    assert list(m.columns) == ["task", "attribute", "group", "metric", "horizon", "estimate",
                               "ci_low", "ci_high", "ci_method", "n", "n_pos", "status",
                               "reason"]
    overall = m[(m.attribute == "overall") & (m.metric == "auroc") & (m.task == "hf")].iloc[0]
    assert overall.n_pos == synthetic.y_hf.sum()
    assert isinstance(result.metrics, pd.DataFrame)


def test_calibration_fits_converge_on_every_real_group_and_match_statsmodels(
        ptbxl_result, ptbxl_frame):
    m = ptbxl_result.metrics
    slope = m[m.metric == "cal_slope"]
    assert not slope.reason.str.contains("did not converge").any()
    for task in TASKS:
        p_all = ptbxl_frame[f"score:{task}"].to_numpy()
        # Default clip 0: only exact 0 / 1 move (to the nearest unsaturated score, or 1e-6).
        low = min(1e-6, p_all[p_all > 0].min())
        high = max(1 - 1e-6, p_all[p_all < 1].max())
        for sex, sub in ptbxl_frame.groupby("sex"):
            y = sub[f"label:{task}"].to_numpy()
            p = sub[f"score:{task}"].to_numpy()
            x = logit(np.where(p <= 0, low, np.where(p >= 1, high, p)))
            ref = sm.Logit(y, sm.add_constant(x)).fit(disp=0, tol=1e-12, maxiter=500)
            assert _est(ptbxl_result, task, "sex", sex, "cal_slope") == pytest.approx(
                ref.params[1], rel=1e-6, abs=1e-6)
            assert _est(ptbxl_result, task, "sex", sex, "cal_intercept") == pytest.approx(
                ref.params[0], rel=1e-6, abs=1e-6)
