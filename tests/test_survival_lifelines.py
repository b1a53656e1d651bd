"""Survival estimators against lifelines (a second, independent reference beside sksurv).

lifelines is installed with ``--no-deps`` (requirements/nodeps.txt): it declares pandas<3 but
its estimators used here work with pandas 3.1, which these tests also check.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecgaudit.metrics._survival import SurvGroup, metric_keys, survival_values
from ecgaudit.metrics._survkm import SurvivalRows, aalen_johansen, kaplan_meier, step_at

lifelines = pytest.importorskip("lifelines")
from lifelines.utils import concordance_index  # noqa: E402


def _cohort(n=300, seed=0, score_ties=False, competing=False):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t_event = rng.weibull(1.2, n) * 800 * np.exp(-0.5 * x)
    t_cens = rng.uniform(100, 2000, n)
    t = np.minimum(t_event, t_cens)
    e = (t_event <= t_cens).astype(np.int8)
    if competing:
        e = np.where((e == 1) & (rng.random(n) < 0.3), 2, e).astype(np.int8)
    if score_ties:
        x = np.round(x, 1)
    return t, e, x


def _harrell(t, e, s):
    g = SurvGroup.build(t, e, s, None)
    keys = metric_keys([500.0])
    return float(survival_values(g, None, [500.0], 0.5)[keys.index(("harrell_c", None))])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("score_ties", [False, True])
def test_harrell_c_matches_lifelines(seed, score_ties):
    t, e, s = _cohort(seed=seed, score_ties=score_ties)
    # lifelines scores are "higher = longer survival": pass the negated risk
    ref = concordance_index(t, -s, e == 1)
    assert _harrell(t, e, s) == pytest.approx(ref, abs=1e-12)


def test_harrell_c_matches_lifelines_with_tied_times():
    t, e, s = _cohort(seed=3, score_ties=True)
    t = np.round(t, -2) + 1.0  # many tied times: event vs censored at one time is comparable
    ref = concordance_index(t, -s, e == 1)
    assert _harrell(t, e, s) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_kaplan_meier_matches_lifelines(weighted):
    t, e, _ = _cohort(seed=4)
    t = np.round(t, -1) + 1.0
    w = np.random.default_rng(9).poisson(1.0, t.size).astype(float) if weighted else None
    rows = SurvivalRows.build(t, e)
    ws = np.ones(t.size) if w is None else w[rows.index]
    ours = kaplan_meier(rows, ws)
    kmf = lifelines.KaplanMeierFitter().fit(t, e == 1, weights=w)
    grid = np.linspace(0, t.max(), 40)
    ref = kmf.survival_function_at_times(grid).to_numpy()
    np.testing.assert_allclose(step_at(rows.uniq, ours, grid), ref, atol=1e-12)


def test_aalen_johansen_matches_lifelines():
    t, e, _ = _cohort(n=400, seed=5, competing=True)  # continuous times: no jitter needed
    rows = SurvivalRows.build(t, e)
    ours = aalen_johansen(rows, np.ones(t.size))
    ajf = lifelines.AalenJohansenFitter(calculate_variance=False).fit(t, e, event_of_interest=1)
    cif = ajf.cumulative_density_.iloc[:, 0]
    grid = np.linspace(1.0, t.max() * 0.99, 30)
    ref = np.array([cif[cif.index <= h].iloc[-1] for h in grid])
    np.testing.assert_allclose(step_at(rows.uniq, ours, grid, before=0.0), ref, atol=1e-10)


def test_observed_risk_at_horizon_matches_lifelines():
    t, e, s = _cohort(n=500, seed=6, competing=True)
    p = 1 / (1 + np.exp(-s))
    hs = [300.0, 900.0]
    g = SurvGroup.build(t, e, s, p)
    v = dict(zip(metric_keys(hs), survival_values(g, None, hs, 0.5)))
    ajf = lifelines.AalenJohansenFitter(calculate_variance=False).fit(t, e, event_of_interest=1)
    cif = ajf.cumulative_density_.iloc[:, 0]
    for h in hs:
        assert v[("observed_risk", h)] == pytest.approx(cif[cif.index <= h].iloc[-1], abs=1e-10)
