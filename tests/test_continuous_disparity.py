"""Continuous-outcome disparities (group vs reference) against scipy / statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from ecgaudit.disparity._contcompare import continuous_contrasts
from ecgaudit.metrics import newcombe_diff_ci
from ecgaudit.metrics._continuous import sufficient_stats


def _group(n: int, bias: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(4.4, 0.6, n)
    return y, y + bias + rng.normal(0, 0.3 + 0.1 * seed, n)


def _rows(level: float = 0.95) -> tuple[dict, tuple, tuple]:
    g, r = _group(300, 0.4, 1), _group(500, 0.0, 2)
    sg = sufficient_stats(*g, 0.5, 4.4).sum(axis=0)
    sr = sufficient_stats(*r, 0.5, 4.4).sum(axis=0)
    rows = continuous_contrasts(sg, sr, 4.4, level)
    return {row["metric"]: row for row in rows}, g, r


def test_bias_and_mae_differences_are_welch() -> None:
    rows, (yg, xg), (yr, xr) = _rows(0.9)
    for metric, f in (("bias", lambda y, x: x - y), ("mae", lambda y, x: np.abs(x - y))):
        a, b = f(yg, xg), f(yr, xr)
        res = stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(0.9)
        row = rows[metric]
        assert row["difference"] == pytest.approx(a.mean() - b.mean(), rel=1e-9)
        assert row["p_value"] == pytest.approx(res.pvalue, rel=1e-6)
        assert (row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx(
            (ci.low, ci.high), rel=1e-8)
        assert row["test"] == "welch-t"
    assert math.isnan(rows["bias"]["ratio"])
    mae = rows["mae"]
    assert mae["ratio"] == pytest.approx(np.mean(np.abs(xg - yg)) / np.mean(np.abs(xr - yr)))
    assert mae["ratio_ci_low"] < mae["ratio"] < mae["ratio_ci_high"]


def test_slope_difference_is_wald_from_two_ols_fits() -> None:
    rows, (yg, xg), (yr, xr) = _rows()
    fg = sm.OLS(yg, sm.add_constant(xg)).fit()
    fr = sm.OLS(yr, sm.add_constant(xr)).fit()
    se = math.hypot(fg.bse[1], fr.bse[1])
    diff = fg.params[1] - fr.params[1]
    row = rows["slope"]
    assert row["difference"] == pytest.approx(diff, rel=1e-8)
    assert row["difference_ci_high"] - row["difference"] == pytest.approx(1.959964 * se,
                                                                          rel=1e-5)
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs(diff / se)), rel=1e-6)


def test_within_tolerance_uses_newcombe() -> None:
    rows, (yg, xg), (yr, xr) = _rows()
    k1, k2 = int(np.sum(np.abs(xg - yg) <= 0.5)), int(np.sum(np.abs(xr - yr) <= 0.5))
    lo, hi = newcombe_diff_ci(k1, yg.size, k2, yr.size, 0.95)
    row = rows["within_tolerance"]
    assert (row["difference_ci_low"], row["difference_ci_high"]) == pytest.approx((lo, hi))
    assert row["ci_method"] == "newcombe/katz"


def test_planted_bias_is_detected_and_null_is_not() -> None:
    rows, _, _ = _rows()
    assert rows["bias"]["difference_ci_low"] > 0.3
    assert rows["bias"]["p_value"] < 1e-10
    g, r = _group(300, 0.0, 3), _group(300, 0.0, 3)
    same = continuous_contrasts(sufficient_stats(*g, None, 4.4).sum(axis=0),
                                sufficient_stats(*r, None, 4.4).sum(axis=0), 4.4,
                                metrics=("bias", "rmse"))
    assert [row["difference"] for row in same] == [0.0, 0.0]
    assert same[1]["ratio"] == pytest.approx(1.0)


def test_undefined_group_gives_insufficient_row() -> None:
    tiny = sufficient_stats(np.array([4.0]), np.array([4.2]), None, 4.4).sum(axis=0)
    ref = sufficient_stats(*_group(50, 0, 1), None, 4.4).sum(axis=0)
    rows = continuous_contrasts(tiny, ref, 4.4, metrics=("bias",))
    assert rows[0]["status"] == "insufficient" and math.isnan(rows[0]["difference"])
