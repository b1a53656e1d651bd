"""Calibration suite vs statsmodels lowess (it=0) and closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.nonparametric.smoothers_lowess import lowess

from ecgaudit.metrics._calsuite import calibration_suite, lowess_fit, reliability_curve
from ecgaudit.metrics._intervals import wilson_ci


def _data(n: int, seed: int = 0, power: float = 1.5):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n)
    y = (rng.random(n) < p**power).astype(np.int8)
    return y, p


@pytest.mark.parametrize("n", [4, 25, 400, 3000])
@pytest.mark.parametrize("frac", [0.3, 2 / 3])
def test_lowess_equals_statsmodels_without_robustness_iterations(n: int, frac: float) -> None:
    y, p = _data(n, seed=n)
    order = np.argsort(p)
    ref = lowess(y.astype(float), p, frac=frac, it=0, delta=0.0, return_sorted=False)
    got = lowess_fit(p[order], y[order].astype(float), frac)
    assert np.max(np.abs(got - ref[order])) < 1e-12
    xv = np.linspace(0.05, 0.95, 31)
    ref_x = lowess(y.astype(float), p, frac=frac, it=0, xvals=xv)
    got_x = lowess_fit(p[order], y[order].astype(float), frac, xv)
    both = np.isfinite(ref_x)
    assert np.array_equal(both, np.isfinite(got_x))
    assert np.all(np.abs(got_x[both] - ref_x[both]) < 1e-12)


def test_ici_e50_e90_emax_from_statsmodels_smooth() -> None:
    y, p = _data(2000, seed=1)
    smooth = lowess(y.astype(float), p, frac=2 / 3, it=0, return_sorted=False)
    err = np.abs(smooth - p)
    got = calibration_suite(y, p)
    assert got["ici"] == pytest.approx(err.mean(), abs=1e-12)
    assert got["e50"] == pytest.approx(np.median(err), abs=1e-12)
    assert got["e90"] == pytest.approx(np.quantile(err, 0.9), abs=1e-12)
    assert got["emax"] == pytest.approx(err.max(), abs=1e-12)
    # Miscalibrated by construction (true rate p^1.5 < p): ICI clearly above 0.
    assert got["ici"] > 0.05


def test_large_groups_use_a_grid_with_small_error() -> None:
    y, p = _data(8000, seed=2)
    exact = calibration_suite(y, p, max_exact=10**6)
    grid = calibration_suite(y, p, max_exact=1000, grid=400)
    for k in exact:
        assert grid[k] == pytest.approx(exact[k], abs=1e-4)


def test_well_calibrated_scores_have_small_ici_by_simulation() -> None:
    y, p = _data(5000, seed=3, power=1.0)
    assert calibration_suite(y, p)["ici"] < 0.02


def test_reliability_curve_bins_match_array_split_and_wilson() -> None:
    y, p = _data(503, seed=4)
    curve = reliability_curve(y, p, n_bins=10)
    order = np.argsort(p, kind="stable")
    bins = np.array_split(order, 10)
    assert curve["n"] == [len(b) for b in bins]
    for i, b in enumerate(bins):
        assert curve["mean_predicted"][i] == pytest.approx(p[b].mean(), abs=1e-15)
        assert curve["observed"][i] == pytest.approx(y[b].mean(), abs=1e-15)
        lo, hi = wilson_ci(int(y[b].sum()), len(b))
        assert (curve["observed_ci_low"][i], curve["observed_ci_high"][i]) == (lo, hi)
    assert len(curve["smooth_p"]) == len(curve["smooth_observed"]) == 50
    assert np.all(np.diff(curve["smooth_p"]) > 0)
