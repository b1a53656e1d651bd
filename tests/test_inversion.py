"""The fast inverted p-values (disparity/_inversion.py) equal the reference search exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from ecgaudit.disparity._inversion import HAVE_NUMBA, auroc_bracket, chi2_ppf, oe_limits
from ecgaudit.metrics._smallsample import (
    auc_score_limits,
    inverted_p_value,
    mover_difference,
    poisson_ratio_limits,
    z_of,
)


def _auroc_inputs(seed: int, size: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    g = np.column_stack([rng.uniform(0.4, 1.0, size), rng.integers(0, 400, size),
                         rng.integers(0, 4000, size)]).astype(float)
    r = np.column_stack([rng.uniform(0.5, 1.0, size), rng.integers(1, 5000, size),
                         rng.integers(1, 50000, size)]).astype(float)
    # Boundaries and undefined sides: AUROC 0 / 1, nan, an empty class, tiny groups.
    g[:8, 0] = [1.0, 0.0, np.nan, 0.5, 1.0, 0.97, 0.999, 0.02]
    g[8:12, 1:] = [[0, 10], [10, 0], [1, 1], [2, 3]]
    r[12, 0] = r[13, 0] = g[12, 0]  # difference 0
    dg = np.where(rng.random(size) < 0.3, rng.uniform(1.0, 3.0, size), 1.0)
    dr = np.ones(size)
    dg[14] = np.nan
    return g, r, dg, dr


def _reference_limits(g: np.ndarray, r: np.ndarray, dg: np.ndarray, dr: np.ndarray):
    def limits(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        l1, u1 = auc_score_limits(g[:, 0], g[:, 1], g[:, 2], z, dg)
        l2, u2 = auc_score_limits(r[:, 0], r[:, 1], r[:, 2], z, dr)
        return mover_difference(g[:, 0], l1, u1, r[:, 0], l2, u2)
    return limits


@pytest.mark.skipif(not HAVE_NUMBA, reason="the compiled search needs numba")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_search_is_the_reference_bisection(seed: int) -> None:
    g, r, dg, dr = _auroc_inputs(seed, 300)
    diff = g[:, 0] - r[:, 0]
    limits = _reference_limits(g, r, dg, dr)
    for level in (None, 0.95, 0.9):
        ref = inverted_p_value(diff, limits, level=level)
        fast = inverted_p_value(diff, limits, level=level,
                                search=lambda d: auroc_bracket(d, g, r, dg, dr))
        np.testing.assert_array_equal(fast, ref)  # bit for bit, nan where undefined
    assert np.isnan(ref[2]) and ref[12] == 1.0
    assert np.sum(ref < 0.05) > 10 and np.sum(ref > 0.5) > 10  # both ends exercised


@pytest.mark.skipif(not HAVE_NUMBA, reason="the compiled search needs numba")
def test_auroc_bracket_is_the_last_bisection_step() -> None:
    g, r, dg, dr = _auroc_inputs(5, 60)
    diff = g[:, 0] - r[:, 0]
    limits = _reference_limits(g, r, dg, dr)
    lo, hi = np.zeros_like(diff), np.full_like(diff, 40.0)
    for _ in range(50):  # the reference steps, written out
        mid = (lo + hi) / 2.0
        low, high = limits(mid)
        excludes = np.where(diff > 0, low > 0, high < 0)
        lo, hi = np.where(excludes, mid, lo), np.where(excludes, hi, mid)
    f_lo, f_hi = auroc_bracket(diff, g, r, dg, dr)
    np.testing.assert_array_equal(f_lo, lo)
    np.testing.assert_array_equal(f_hi, hi)
    assert np.all(f_hi - f_lo <= 40.0 / 2**50)


def test_chi2_ppf_equals_scipy() -> None:
    rng = np.random.default_rng(3)
    q = np.concatenate([rng.random(500), [0.0, 1.0, np.nan, -0.1, 1.5, 1e-300, 0.5, 0.5]])
    df = np.concatenate([rng.uniform(0.0, 400.0, 500), [3.0, 3.0, 2.0, 2.0, 2.0, 1.0, 0.0,
                                                        -1.0]])
    df[:20] = rng.integers(1, 9, 20) * 2.0
    np.testing.assert_array_equal(chi2_ppf(q, df), chi2.ppf(q, df))


def test_oe_limits_equal_poisson_ratio_limits() -> None:
    rng = np.random.default_rng(4)
    observed = np.concatenate([rng.integers(0, 200, 300), [0, 1, 2, 5]]).astype(float)
    expected = np.concatenate([rng.uniform(0.5, 300.0, 300), [2.0, 0.0, -1.0, 3.0]])
    deff = np.where(rng.random(observed.size) < 0.3, 1.7, 1.0)
    for z in (1e-9, 0.3, z_of(0.95), 7.0, 40.0):
        level = np.full(observed.size, chi2.cdf(z * z, 1))  # 2 Phi(z) - 1
        for got, want in zip(oe_limits(observed, expected, level, deff),
                             poisson_ratio_limits(observed, expected, level, deff)):
            np.testing.assert_array_equal(got, want)
