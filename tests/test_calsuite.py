"""Calibration suite vs statsmodels lowess (it=0) and closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.nonparametric.smoothers_lowess import lowess

from ecgaudit.metrics._calsuite import (
    binned_lowess_fit,
    calibration_suite,
    lowess_fit,
    reliability_curve,
)
from ecgaudit.metrics._intervals import wilson_ci
from ecgaudit.metrics._order import score_label_order, stable_order


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


def _miscalibrated(n: int, seed: int, scores: str) -> tuple[np.ndarray, np.ndarray]:
    """Known miscalibration: true rate p**1.5 plus a wiggle; uniform or right-skewed scores."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.99, n) if scores == "uniform" else rng.beta(0.5, 8.0, n)
    rate = np.clip(p**1.5 + 0.05 * np.sin(6.0 * p), 0.0, 1.0)
    return (rng.random(n) < rate).astype(np.int8), p


@pytest.mark.parametrize("scores", ["uniform", "skewed"])
def test_binned_grid_fit_matches_exact_grid_fit_on_200k_rows(scores: str) -> None:
    # Measured differences are below 1e-5 (curve and all four summaries); 1e-4 is asserted.
    y, p = _miscalibrated(200_000, 11, scores)
    exact = calibration_suite(y, p, lowess_bins=None)
    binned = calibration_suite(y, p)
    assert exact["ici"] > 0.02
    for key in ("ici", "e50", "e90", "emax"):
        assert binned[key] == pytest.approx(exact[key], abs=1e-4)
    ce = reliability_curve(y, p, points=100, lowess_bins=None)
    cb = reliability_curve(y, p, points=100)
    assert cb["smooth_p"] == ce["smooth_p"]
    assert np.max(np.abs(np.subtract(cb["smooth_observed"], ce["smooth_observed"]))) < 1e-4
    assert {k: v for k, v in cb.items() if not k.startswith("smooth")} == {
        k: v for k, v in ce.items() if not k.startswith("smooth")}


@pytest.mark.parametrize("frac", [0.002, 0.3, 2 / 3, 1.0])
def test_binned_fit_with_a_bin_per_row_is_the_exact_fit(frac: float) -> None:
    y, p = _data(3000, seed=12)
    order = np.argsort(p, kind="stable")
    ps, ys = p[order], y[order].astype(float)
    xv = np.unique(np.quantile(ps, np.linspace(0.0, 1.0, 400)))
    exact = lowess_fit(ps, ys, frac, xv)
    binned = binned_lowess_fit(ps, ys, frac, xv, bins=4096)
    assert np.array_equal(np.isfinite(exact), np.isfinite(binned))
    both = np.isfinite(exact)
    assert both.sum() > 300
    # Rounding only (different summation order; 6-row windows at frac = 0.002 amplify it).
    assert np.max(np.abs(exact[both] - binned[both])) < 1e-10


def test_binned_fit_keeps_ties_in_window_order() -> None:
    # Scores on 21 levels: windows start and end inside runs of ties, cutting bins.
    rng = np.random.default_rng(13)
    p = np.round(rng.beta(2.0, 5.0, 60_000), 2)
    y = (rng.random(p.size) < p).astype(np.int8)
    exact = calibration_suite(y, p, lowess_bins=None)
    binned = calibration_suite(y, p, lowess_bins=256)
    for key in exact:
        assert binned[key] == pytest.approx(exact[key], abs=1e-9)


def test_small_groups_are_fitted_exactly_at_every_point() -> None:
    y, p = _data(5000, seed=14)
    assert calibration_suite(y, p) == calibration_suite(y, p, lowess_bins=None)
    curve = reliability_curve(y, p)
    assert curve == reliability_curve(y, p, lowess_bins=None)
    ref = lowess(y.astype(float), p, frac=2 / 3, it=0, xvals=np.array(curve["smooth_p"]))
    assert np.max(np.abs(np.asarray(curve["smooth_observed"]) - ref)) < 1e-12


@pytest.mark.parametrize("case", ["uniform", "ties", "signed_zeros", "nonfinite", "constant",
                                  "tiny", "negative", "subnormal", "huge"])
def test_stable_order_is_numpy_stable_argsort(case: str) -> None:
    rng = np.random.default_rng(15)
    p = {
        "uniform": rng.uniform(0.0, 1.0, 50_000),
        "ties": np.round(rng.beta(0.5, 8.0, 50_000), 3),
        "signed_zeros": rng.choice([-0.0, 0.0, 1e-300, 0.5], 1000),
        "nonfinite": rng.choice([np.nan, np.inf, -np.inf, 0.2, 0.1], 1000),
        "constant": np.full(777, 0.3),
        "tiny": np.array([0.4]),
        "negative": rng.normal(0.0, 1e6, 10_000).round(),
        "subnormal": rng.choice([0.0, 5e-324, 1e-310, 2e-310], 1000),
        "huge": rng.choice([-1e308, 1e308, 0.0, 1.0], 1000),
    }[case]
    assert np.array_equal(stable_order(p), np.argsort(p, kind="stable"))
    y = (np.arange(p.size) % 3 == 0).astype(np.int8)
    assert np.array_equal(score_label_order(y, p), np.lexsort((y, p)))


def test_assume_sorted_gives_the_same_suite_and_curve_as_sorting() -> None:
    # The audit passes each group's rows already in stable score order; with ties and
    # both fit paths (raw windows below max_exact rows, binned above).
    rng = np.random.default_rng(11)
    for n in (800, 9000):
        p = np.round(rng.beta(2, 4, n), 2)  # many ties
        y = (rng.random(n) < p).astype(np.int64)
        order = np.argsort(p, kind="stable")
        assert calibration_suite(y[order], p[order], assume_sorted=True) == \
            calibration_suite(y, p)
        assert reliability_curve(y[order], p[order], assume_sorted=True) == \
            reliability_curve(y, p)
        # and the flag matters: unsorted input is not silently re-sorted
        assert calibration_suite(y, p, assume_sorted=True) != calibration_suite(y, p)
