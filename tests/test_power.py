"""Minimum detectable differences vs statsmodels power and by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.power import NormalIndPower

from ecgaudit.metrics._power import (
    hanley_mcneil_variance,
    min_detectable_auroc_difference,
    min_detectable_difference,
    min_detectable_rate_difference,
)


@pytest.mark.parametrize(("n_g", "n_ref", "rate"), [(200, 800, 0.8), (40, 1000, 0.6)])
def test_rate_difference_equals_statsmodels_normal_power(n_g: int, n_ref: int,
                                                          rate: float) -> None:
    sd = math.sqrt(rate * (1 - rate))
    es = NormalIndPower().solve_power(effect_size=None, nobs1=n_g, alpha=0.05, power=0.8,
                                      ratio=n_ref / n_g)
    assert min_detectable_rate_difference(n_g, rate, n_ref, rate) == pytest.approx(
        es * sd, rel=1e-5)


def test_detectable_difference_is_about_2_8_standard_errors() -> None:
    assert min_detectable_difference(1.0) == pytest.approx(
        norm.ppf(0.975) + norm.ppf(0.8), rel=1e-3)
    assert math.isnan(min_detectable_difference(0.0))
    assert math.isnan(min_detectable_rate_difference(0, 0.5, 10, 0.5))


def test_hanley_mcneil_closed_form_and_limits() -> None:
    a, p, n = 0.8, 30, 70
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    expected = (a * (1 - a) + (p - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (p * n)
    assert hanley_mcneil_variance(a, p, n) == pytest.approx(expected, rel=1e-14)
    assert hanley_mcneil_variance(1.0, p, n) == 0.0
    assert math.isnan(hanley_mcneil_variance(0.8, 0, 5))


def _aucs(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Row-wise Mann-Whitney AUROC (continuous scores, no ties)."""
    return (pos[:, :, None] > neg[:, None, :]).mean(axis=(1, 2))


@pytest.mark.slow
def test_auroc_difference_has_80_percent_power_by_simulation() -> None:
    rng = np.random.default_rng(0)
    pg, ng, pr, nr, sims = 40, 160, 120, 480, 600
    a_ref = 0.85
    d_ref = math.sqrt(2) * norm.ppf(a_ref)
    # Exponential-like (HM) variance is approximate for binormal data; iterate once so the
    # group's AUROC is at the alternative.
    delta = min_detectable_auroc_difference(pg, ng, a_ref, pr, nr, a_ref)
    delta = min_detectable_auroc_difference(pg, ng, a_ref - delta, pr, nr, a_ref)
    d_g = math.sqrt(2) * norm.ppf(a_ref - delta)
    a_g = _aucs(rng.normal(d_g, 1, (sims, pg)), rng.normal(0, 1, (sims, ng)))
    a_r = _aucs(rng.normal(d_ref, 1, (sims, pr)), rng.normal(0, 1, (sims, nr)))
    se = np.sqrt([hanley_mcneil_variance(g, pg, ng) + hanley_mcneil_variance(r, pr, nr)
                  for g, r in zip(a_g, a_r)])
    reject = np.abs(a_r - a_g) / se > norm.ppf(0.975)
    assert 0.74 <= reject.mean() <= 0.86  # 0.8 +- ~3.7 simulation standard errors
