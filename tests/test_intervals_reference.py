"""Closed-form intervals and tests against statsmodels and brute-force definitions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from ecgaudit.disparity import benjamini_hochberg, holm
from ecgaudit.metrics import (
    delong_auc_variance,
    delong_ci,
    delong_paired,
    delong_unpaired,
    katz_ratio_ci,
    newcombe_diff_ci,
    two_proportion_test,
    wilson_ci,
)


def _delong_bruteforce(y, p):
    """DeLong et al. (1988) from the kernel psi(x, y) written out pairwise."""
    pos, neg = p[y == 1], p[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    auc = psi.mean()
    v10 = psi.mean(axis=1)
    v01 = psi.mean(axis=0)
    var = v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size
    return auc, var, v10, v01


def test_delong_small_closed_form_case():
    # 2 positives {0.9, 0.4}, 2 negatives {0.4, 0.1}, one tie: psi = [[1, 1], [0.5, 1]]
    y = np.array([1, 1, 0, 0])
    p = np.array([0.9, 0.4, 0.4, 0.1])
    auc, var = delong_auc_variance(y, p)
    assert auc == pytest.approx(0.875)
    # V10 = [1, 0.75] -> var 0.03125 ; V01 = [0.75, 1] -> var 0.03125
    assert var == pytest.approx(0.03125 / 2 + 0.03125 / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_matches_bruteforce_with_heavy_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300) * 0.6 + 0.3 * y, 1)  # few distinct values: many ties
    auc, var = delong_auc_variance(y, p)
    ref_auc, ref_var, _, _ = _delong_bruteforce(y, p)
    assert auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert auc == pytest.approx(ref_auc, abs=1e-12)
    assert var == pytest.approx(ref_var, rel=1e-10)


def test_delong_paired_matches_bruteforce_covariance():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 250)
    p1 = rng.random(250) + 0.4 * y
    p2 = np.round(p1 + rng.normal(0, 0.3, 250), 2)
    a1, _, v10a, v01a = _delong_bruteforce(y, p1)
    a2, _, v10b, v01b = _delong_bruteforce(y, p2)
    m, n = (y == 1).sum(), (y == 0).sum()
    var = (np.var(v10a - v10b, ddof=1) / m + np.var(v01a - v01b, ddof=1) / n)
    diff, lo, hi, pv = delong_paired(y, p1, p2)
    assert diff == pytest.approx(a1 - a2)
    assert (hi - lo) / 2 == pytest.approx(1.959963984540054 * np.sqrt(var), rel=1e-9)
    assert 0 <= pv <= 1


def test_delong_unpaired_and_ci():
    diff, lo, hi, pv = delong_unpaired(0.8, 0.0004, 0.7, 0.0005)
    assert diff == pytest.approx(0.1)
    assert (lo + hi) / 2 == pytest.approx(0.1)
    z = 0.1 / np.sqrt(0.0009)
    from scipy.stats import norm
    assert pv == pytest.approx(2 * norm.sf(z))
    lo, hi = delong_ci(0.99, 0.0004)
    assert hi == 1.0  # clipped
    assert np.isnan(delong_ci(0.9, float("nan"))[0])


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (57, 120), (1, 2000)])
def test_wilson_matches_statsmodels(k, n):
    lo, hi = wilson_ci(k, n)
    ref = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert lo == pytest.approx(ref[0], abs=1e-12)
    assert hi == pytest.approx(ref[1], abs=1e-12)


@pytest.mark.parametrize(("k1", "n1", "k2", "n2"), [(30, 50, 20, 60), (5, 40, 0, 35), (90, 100, 70, 100)])
def test_newcombe_matches_statsmodels(k1, n1, k2, n2):
    lo, hi = newcombe_diff_ci(k1, n1, k2, n2)
    ref = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff")
    assert lo == pytest.approx(ref[0], abs=1e-10)
    assert hi == pytest.approx(ref[1], abs=1e-10)


def test_katz_ratio_matches_statsmodels_log_method():
    lo, hi = katz_ratio_ci(30, 50, 20, 60)
    ref = confint_proportions_2indep(30, 50, 20, 60, method="log", compare="ratio")
    assert lo == pytest.approx(ref[0], rel=1e-10)
    assert hi == pytest.approx(ref[1], rel=1e-10)
    assert np.isnan(katz_ratio_ci(0, 10, 0, 10)[0])


def test_two_proportion_test_matches_statsmodels():
    p = two_proportion_test(30, 50, 20, 60)
    _, ref = proportions_ztest([30, 20], [50, 60])
    assert p == pytest.approx(ref, rel=1e-10)


def test_holm_and_bh_match_statsmodels():
    rng = np.random.default_rng(11)
    p = np.r_[rng.random(40), rng.random(10) * 1e-3, [0.5, 0.5]]
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])
    assert benjamini_hochberg(p) == pytest.approx(multipletests(p, method="fdr_bh")[1])
    for a, b in itertools.pairwise(np.argsort(p)):
        assert holm(p)[a] <= holm(p)[b] + 1e-15
