"""Continuous-outcome metrics against independent references (numpy, scipy, statsmodels,
scikit-learn) and exact sample formulas."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from ecgaudit.metrics._continuous import (
    CONTINUOUS_METRIC_SPECS,
    closed_form_intervals,
    metric_values,
    sufficient_stats,
)
from ecgaudit.schema import CONTINUOUS_METRICS

IDX = {m: i for i, m in enumerate(CONTINUOUS_METRICS)}


def _data(n: int, seed: int, loc: float = 140.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(loc, 5.0, n)
    x = 0.9 * y + loc * 0.1 + 0.3 + rng.standard_t(5, n)
    return y, x


def _cf(y: np.ndarray, x: np.ndarray, tol: float | None = 2.0, level: float = 0.95):
    s = sufficient_stats(y, x, tol, shift=float(y.mean()))
    est, lo, hi = closed_form_intervals(s.sum(axis=0)[None, :], float(y.mean()), level)
    return est[0], lo[0], hi[0]


def test_spec_table_declares_every_metric_once() -> None:
    assert tuple(s.name for s in CONTINUOUS_METRIC_SPECS) == CONTINUOUS_METRICS
    for s in CONTINUOUS_METRIC_SPECS:
        assert s.direction in ("lower", "higher") or s.direction.startswith("target:")
        assert s.contrast in ("difference", "ratio")
        assert s.reference and s.label and s.definition


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_point_estimates_match_references(seed: int) -> None:
    y, x = _data(400, seed)
    est, _, _ = _cf(y, x)
    d = x - y
    assert est[IDX["bias"]] == pytest.approx(np.mean(d), rel=1e-9, abs=1e-12)
    assert est[IDX["mae"]] == pytest.approx(mean_absolute_error(y, x), rel=1e-10)
    assert est[IDX["rmse"]] == pytest.approx(np.sqrt(mean_squared_error(y, x)), rel=1e-9)
    sd = np.std(d, ddof=1)
    assert est[IDX["loa_lower"]] == pytest.approx(np.mean(d) - 1.96 * sd, rel=1e-9)
    assert est[IDX["loa_upper"]] == pytest.approx(np.mean(d) + 1.96 * sd, rel=1e-9)
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    assert est[IDX["intercept"]] == pytest.approx(fit.params[0], rel=1e-8)
    assert est[IDX["slope"]] == pytest.approx(fit.params[1], rel=1e-9)
    assert est[IDX["r2"]] == pytest.approx(r2_score(y, x), rel=1e-9)
    assert est[IDX["within_tolerance"]] == pytest.approx(np.mean(np.abs(d) <= 2.0))


def test_closed_form_intervals_match_references() -> None:
    y, x = _data(250, 5)
    _, lo, hi = _cf(y, x, level=0.9)
    d = x - y
    n = d.size
    t_lo, t_hi = stats.t.interval(0.9, n - 1, loc=d.mean(), scale=stats.sem(d))
    assert (lo[IDX["bias"]], hi[IDX["bias"]]) == pytest.approx((t_lo, t_hi), rel=1e-9)
    a = np.abs(d)
    a_lo, a_hi = stats.t.interval(0.9, n - 1, loc=a.mean(), scale=stats.sem(a))
    assert (lo[IDX["mae"]], hi[IDX["mae"]]) == pytest.approx((a_lo, a_hi), rel=1e-9)
    q = d**2
    q_lo, q_hi = stats.t.interval(0.9, n - 1, loc=q.mean(), scale=stats.sem(q))
    assert (lo[IDX["rmse"]], hi[IDX["rmse"]]) == pytest.approx(
        (np.sqrt(q_lo), np.sqrt(q_hi)), rel=1e-8)
    fit = sm.OLS(y, sm.add_constant(x)).fit()
    ci = fit.conf_int(alpha=0.1)
    assert (lo[IDX["intercept"]], hi[IDX["intercept"]]) == pytest.approx(tuple(ci[0]), rel=1e-7)
    assert (lo[IDX["slope"]], hi[IDX["slope"]]) == pytest.approx(tuple(ci[1]), rel=1e-8)
    # Bland & Altman (1999), section 5: SE(LoA) = s sqrt(1/n + 1.96^2 / (2 (n - 1))).
    s = np.std(d, ddof=1)
    half = stats.t.ppf(0.95, n - 1) * s * np.sqrt(1 / n + 1.96**2 / (2 * (n - 1)))
    upper = d.mean() + 1.96 * s
    assert (lo[IDX["loa_upper"]], hi[IDX["loa_upper"]]) == pytest.approx(
        (upper - half, upper + half), rel=1e-9)
    k = int(np.sum(np.abs(d) <= 2.0))
    w = stats.binomtest(k, n).proportion_ci(confidence_level=0.9, method="wilson")
    assert (lo[IDX["within_tolerance"]], hi[IDX["within_tolerance"]]) == pytest.approx(
        (w.low, w.high), rel=1e-9)
    assert np.isnan(lo[IDX["r2"]]) and np.isnan(hi[IDX["r2"]])  # bootstrap only


def test_shift_invariance_and_large_offsets() -> None:
    y, x = _data(300, 9, loc=1e6)
    s = sufficient_stats(y, x, None, shift=float(y.mean())).sum(axis=0)
    est = metric_values(s, float(y.mean()))
    fit = sm.OLS(y - 1e6, sm.add_constant(x - 1e6)).fit()
    assert est[IDX["slope"]] == pytest.approx(fit.params[1], rel=1e-7)
    assert est[IDX["bias"]] == pytest.approx(np.mean(x - y), rel=1e-7)


def test_undefined_metrics_are_nan() -> None:
    s = sufficient_stats(np.array([1.0, 2.0]), np.array([1.5, 1.5]), None, 0.0).sum(axis=0)
    est = metric_values(s, 0.0)
    assert np.isfinite(est[IDX["bias"]])
    assert np.isnan(est[IDX["slope"]]) and np.isnan(est[IDX["loa_upper"]])
    one = metric_values(sufficient_stats(np.array([1.0]), np.array([2.0]), None, 0.0)[0], 0.0)
    assert np.isnan(one[IDX["bias"]]) and np.isnan(one[IDX["mae"]])


def test_weighted_stats_equal_repeated_rows() -> None:
    """Bootstrap replicates are weighted sums: weights k equal k copies of a row."""
    y, x = _data(50, 3)
    w = np.random.default_rng(0).integers(0, 4, 50)
    rows = sufficient_stats(y, x, 1.5, 140.0)
    weighted = metric_values(w @ rows, 140.0)
    rep = metric_values(sufficient_stats(np.repeat(y, w), np.repeat(x, w), 1.5, 140.0)
                        .sum(axis=0), 140.0)
    np.testing.assert_allclose(weighted, rep, rtol=1e-9)
