"""Coverage by simulation (planted truth) of the continuous intervals: 93-97%.

Each simulated study is one group of a grouping, so a single stratified bootstrap (which
resamples within groups) gives every study its own independent interval.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecgaudit.datasets import true_mae
from ecgaudit.metrics._contboot import ContinuousSample, limits
from ecgaudit.metrics._continuous import (
    closed_form_intervals,
    metric_values,
    sufficient_stats,
)
from ecgaudit.schema import CONTINUOUS_METRICS

BIAS, NOISE = 0.3, 0.5
TRUTH = {"bias": BIAS, "mae": true_mae(BIAS, NOISE), "loa_lower": BIAS - 1.96 * NOISE,
         "loa_upper": BIAS + 1.96 * NOISE}


def _studies(r: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(4.4, 0.6, (r, n))
    x = y + BIAS + rng.normal(0.0, NOISE, (r, n))
    return y.ravel(), x.ravel(), np.repeat(np.arange(r), n)


def _coverage(lo: np.ndarray, hi: np.ndarray, truth: float) -> float:
    return float(np.mean((lo <= truth) & (truth <= hi)))


@pytest.mark.slow
@pytest.mark.parametrize("n", [40, 200])
def test_closed_form_coverage(n: int) -> None:
    r = 4000
    y, x, study = _studies(r, n, seed=n)
    rows = sufficient_stats(y, x, None, 4.4)
    stats = np.zeros((r, rows.shape[1]))
    np.add.at(stats, study, rows)
    _, lo, hi = closed_form_intervals(stats, 4.4, 0.95)
    for metric, truth in TRUTH.items():
        k = CONTINUOUS_METRICS.index(metric)
        cov = _coverage(lo[:, k], hi[:, k], truth)
        assert 0.93 <= cov <= 0.97, (metric, n, cov)


@pytest.mark.slow
def test_bootstrap_coverage() -> None:
    r, n = 1000, 150
    y, x, study = _studies(r, n, seed=11)
    sample = ContinuousSample(y, x, [study], [r], seed=3)
    est = sample.group_stats(sample.cell_stats())[0]
    reps = sample.replicates(999)[0]
    bl = limits(reps, metric_values(est, sample.shift), 0.95, "percentile")
    # Percentile limits of agreement under-cover slightly (92.7% here, n = 150; see
    # docs/continuous.md): the closed-form Bland-Altman interval is the one checked for them.
    for metric in ("bias", "mae"):
        truth, k = TRUTH[metric], CONTINUOUS_METRICS.index(metric)
        cov = _coverage(bl.low[:, k], bl.high[:, k], truth)
        assert 0.93 <= cov <= 0.97, (metric, cov)
