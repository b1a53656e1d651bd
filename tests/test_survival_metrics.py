"""Survival metrics against scikit-survival and closed forms on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaudit.metrics._survival import SurvGroup, harrell_influence, metric_keys, survival_values
from ecgaudit.metrics._survkm import SurvivalRows, aalen_johansen, censoring_km, kaplan_meier

sksurv_metrics = pytest.importorskip("sksurv.metrics")
from sksurv.nonparametric import kaplan_meier_estimator  # noqa: E402
from sksurv.util import Surv  # noqa: E402


def _cohort(n=400, seed=0, ties=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t_event = rng.weibull(1.3, n) * 1000 * np.exp(-0.6 * x)
    t_cens = rng.uniform(200, 2500, n)
    t = np.minimum(t_event, t_cens)
    e = (t_event <= t_cens).astype(np.int8)
    if ties:
        t = np.round(t, -1) + 1.0
        x = np.round(x, 1)
    p = 1 / (1 + np.exp(-(x - 0.5)))
    return t, e, x, p


def _values(t, e, s, p, horizons, thr=0.5):
    g = SurvGroup.build(t, e, s, p)
    return dict(zip(metric_keys(horizons), survival_values(g, None, horizons, thr)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sksurv(seed):
    t, e, s, p = _cohort(seed=seed)
    hs = [365.0, 900.0]
    v = _values(t, e, s, p, hs)
    y = Surv.from_arrays(e.astype(bool), t)
    assert v[("harrell_c", None)] == pytest.approx(
        sksurv_metrics.concordance_index_censored(e.astype(bool), t, s)[0], abs=1e-12)
    assert v[("uno_c", 900.0)] == pytest.approx(
        sksurv_metrics.concordance_index_ipcw(y, y, s, tau=900.0)[0], abs=1e-12)
    auc, _ = sksurv_metrics.cumulative_dynamic_auc(y, y, s, hs)
    for h, a in zip(hs, auc):
        assert v[("td_auroc", h)] == pytest.approx(a, abs=1e-12)
    surv = np.column_stack([1 - p, 1 - p])
    _, bs = sksurv_metrics.brier_score(y, y, surv, hs)
    for h, b in zip(hs, bs):
        assert v[("brier", h)] == pytest.approx(b, abs=1e-12)
    ibs = sksurv_metrics.integrated_brier_score(y, y, surv, hs)
    assert v[("ibs", 900.0)] == pytest.approx(ibs, abs=1e-12)
    km_t, km_s = kaplan_meier_estimator(e.astype(bool), t)
    for h in hs:
        s_h = km_s[np.searchsorted(km_t, h, side="right") - 1]
        assert v[("observed_risk", h)] == pytest.approx(1 - s_h, abs=1e-12)
        assert v[("predicted_risk", h)] == pytest.approx(p.mean())
        assert v[("oe_ratio", h)] == pytest.approx((1 - s_h) / p.mean())


def test_weights_equal_repeated_rows():
    t, e, s, p = _cohort(n=120, seed=3)
    w = np.random.default_rng(4).integers(0, 3, t.size)
    rep = np.repeat(np.arange(t.size), w)
    a = survival_values(SurvGroup.build(t, e, s, p), w.astype(float), [300.0, 800.0], 0.4)
    b = survival_values(SurvGroup.build(t[rep], e[rep], s[rep], p[rep]), None,
                        [300.0, 800.0], 0.4)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_hand_built_concordance_and_ties():
    # times 1,2,2,3 ; events 1,1,0,1 ; risks 4,3,3,1
    t = np.array([1.0, 2.0, 2.0, 3.0])
    e = np.array([1, 1, 0, 1], np.int8)
    s = np.array([4.0, 3.0, 3.0, 1.0])
    # comparable pairs: (0,1) c, (0,2) c, (0,3) c, (1,2) tie-in-risk 1/2 (censored at same
    # time is comparable), (1,3) c. (2,*) censored: none. => (4 + 0.5) / 5
    v = _values(t, e, s, None, [2.5])
    assert v[("harrell_c", None)] == pytest.approx(4.5 / 5)


def test_no_censoring_closed_forms():
    rng = np.random.default_rng(5)
    n = 300
    t = rng.exponential(100, n) + 1
    e = np.ones(n, np.int8)
    s = -np.log(t) + rng.normal(0, 1, n)
    p = np.clip(1 - np.exp(-t / 100) + rng.normal(0, 0.1, n), 0.01, 0.99)
    h = float(np.median(t))
    v = _values(t, e, s, p, [h], thr=0.5)
    y = (t <= h).astype(float)
    # without censoring G = 1: Brier and rates are the plain binary quantities
    assert v[("brier", h)] == pytest.approx(np.mean((y - p) ** 2))
    flag = p >= 0.5
    assert v[("sensitivity", h)] == pytest.approx(flag[y == 1].mean())
    assert v[("specificity", h)] == pytest.approx((~flag)[y == 0].mean())
    assert v[("ppv", h)] == pytest.approx(y[flag].mean())
    from sklearn.metrics import roc_auc_score
    assert v[("td_auroc", h)] == pytest.approx(roc_auc_score(y, s))


def test_aalen_johansen_closed_form():
    # no censoring: cumulative incidence is the share with the event of interest by t
    t = np.arange(1.0, 11.0)
    e = np.array([1, 2, 1, 1, 2, 0, 1, 2, 1, 1], np.int8)
    r = SurvivalRows.build(t[:5], e[:5])
    cif = aalen_johansen(r, np.ones(5))
    np.testing.assert_allclose(cif, np.cumsum(e[:5] == 1) / 5)
    r = SurvivalRows.build(t, e)
    km = kaplan_meier(r, np.ones(10))
    assert km[4] == pytest.approx(0.5)
    assert censoring_km(r, np.ones(10))[5] == pytest.approx(1 - 1 / 5)


def test_harrell_ij_variance_matches_jackknife_scale():
    t, e, s, _ = _cohort(n=300, seed=7, ties=False)
    g = SurvGroup.build(t, e, s, None)
    est, infl = harrell_influence(g)
    assert est == pytest.approx(sksurv_metrics.concordance_index_censored(
        e.astype(bool), t, s)[0])
    # infinitesimal jackknife vs delete-one jackknife
    jack = np.array([survival_values(SurvGroup.build(np.delete(t, i), np.delete(e, i),
                                                     np.delete(s, i), None), None, [500.0],
                                     0.5)[0] for i in range(t.size)])
    var_j = (t.size - 1) / t.size * np.sum((jack - jack.mean()) ** 2)
    assert np.sum(infl**2) == pytest.approx(var_j, rel=0.1)


def test_horizon_beyond_follow_up_is_nan():
    t, e, s, p = _cohort(n=100, seed=8)
    v = _values(t, e, s, p, [t.max() + 1])
    assert np.isnan(v[("td_auroc", t.max() + 1)])
    assert np.isnan(v[("brier", t.max() + 1)])
    assert np.isfinite(v[("harrell_c", None)])


@pytest.mark.parametrize("competing", [False, True])
def test_compiled_kernel_matches_numpy(competing):
    from ecgaudit.metrics import _kernels
    from ecgaudit.metrics._survaudit import compiled_replicates

    if not _kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    t, e, s, p = _cohort(n=250, seed=11)
    if competing:
        e = np.where(np.arange(t.size) % 6 == 0, 2, e).astype(np.int8)
    idx = np.arange(10, 10 + t.size)
    g = SurvGroup.build(t, e, s, p)
    rng = np.random.default_rng(12)
    weights = rng.poisson(1.0, (6, t.size + 20)).astype(np.int32)
    weights[0, :] = 1
    hs = [300.0, 800.0]
    got = compiled_replicates(g, idx, weights, hs, 0.4)
    want = np.array([survival_values(g, w[idx].astype(float), hs, 0.4) for w in weights])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, equal_nan=True)
    # a risk score (no probability): the probability metrics are undefined in both
    g2 = SurvGroup.build(t, e, s, None)
    got2 = compiled_replicates(g2, idx, weights[:2], hs, 0.4)
    want2 = np.array([survival_values(g2, w[idx].astype(float), hs, 0.4) for w in weights[:2]])
    np.testing.assert_allclose(got2, want2, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_ici_small_when_calibrated_and_large_when_shifted():
    # no censoring, event by the horizon with the predicted probability itself
    rng = np.random.default_rng(21)
    n = 4000
    p = rng.uniform(0.05, 0.6, n)
    event_by_h = rng.random(n) < p
    t = np.where(event_by_h, rng.uniform(1, 100, n), rng.uniform(101, 200, n))
    e = np.ones(n, np.int8)
    v = _values(t, e, p, p, [100.5])
    assert v[("cal_ici", 100.5)] < 0.02
    shifted = _values(t, e, p, np.clip(p + 0.1, 0, 1), [100.5])
    assert 0.07 < shifted[("cal_ici", 100.5)] < 0.13
    assert shifted[("oe_ratio", 100.5)] == pytest.approx(event_by_h.mean() / (p + 0.1).mean())
