"""Coverage of survival intervals on Weibull cohorts with a planted, known group C-index."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaudit.metrics._survaudit import SurvTask, survival_audit
from ecgaudit.metrics._survival import SurvGroup, harrell_influence, metric_keys, survival_values


def _draw(rng, n, beta):
    x = rng.normal(size=n)
    te = rng.weibull(1.5, n) * np.exp(-beta * x / 1.5)
    tc = rng.uniform(0.2, 2.5, n)
    return np.minimum(te, tc), (te <= tc).astype(np.int8), x


def _truth(beta, horizon):
    # The estimands under this censoring: the statistic on a very large cohort.
    t, e, x = _draw(np.random.default_rng(999), 60_000, beta)
    g = SurvGroup.build(t, e, x, None)
    v = dict(zip(metric_keys([horizon]), survival_values(g, None, [horizon], 0.5)))
    return harrell_influence(g)[0], v[("td_auroc", horizon)]


class _G:
    def __init__(self, codes):
        self.attribute, self.codes, self.groups, self.reference = "grp", codes, ("a", "b"), 0


@pytest.mark.slow
def test_harrell_ij_coverage_and_difference():
    ca, _ = _truth(1.0, 1.0)
    cb, _ = _truth(0.4, 1.0)
    rng = np.random.default_rng(1)
    hits = hits_d = 0
    reps = 400
    for _ in range(reps):
        ta, ea, xa = _draw(rng, 250, 1.0)
        tb, eb, xb = _draw(rng, 250, 0.4)
        task = SurvTask("t", np.r_[ta, tb], np.r_[ea, eb], np.r_[xa, xb], None, 0.5, (1.0,))
        m, d, _ = survival_audit([task], [_G(np.repeat([0, 1], 250))], None, level=0.95,
                                 min_events=1, n_boot=0, seed=0, max_degenerate=0.05)
        row = next(r for r in m if r["metric"] == "harrell_c" and r["group"] == "a")
        hits += row["ci_low"] <= ca <= row["ci_high"]
        drow = next(r for r in d if r["metric"] == "harrell_c")
        hits_d += drow["difference_ci_low"] <= cb - ca <= drow["difference_ci_high"]
    assert 0.93 <= hits / reps <= 0.97
    assert 0.93 <= hits_d / reps <= 0.97


@pytest.mark.slow
def test_bootstrap_coverage_td_auroc():
    _, auc = _truth(1.0, 1.0)
    rng = np.random.default_rng(2)
    hits, reps = 0, 120
    for i in range(reps):
        t, e, x = _draw(rng, 500, 1.0)
        task = SurvTask("t", t, e, x, None, 0.5, (1.0,))
        m, _, _ = survival_audit([task], [_G(np.zeros(500, np.int64))], None, level=0.95,
                                 min_events=1, n_boot=200, seed=i, max_degenerate=0.05)
        row = next(r for r in m if r["metric"] == "td_auroc" and r["group"] == "a")
        hits += row["ci_low"] <= auc <= row["ci_high"]
    # 120 cohorts: the binomial SE of the coverage is about 2.5 points. Measured 92.5%
    # (90.0% with n = 250): the percentile interval runs slightly short, as usual for AUCs.
    assert 0.90 <= hits / reps <= 0.99
