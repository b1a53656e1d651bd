"""Calibration suite and reliability curve from runs of tied rows (issue 17) equal the row
functions (``metrics/_calsuite.py``) on the rows the runs describe, to 1e-12."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgaudit.metrics import calibration_suite, reliability_curve
from ecgaudit.metrics._runsuite import Runs, runs_calibration_suite, runs_reliability_curve

TOL = 1e-12


def _runs(seed: int, n_scores: int, per_run: int, *, constant: bool = False,
          calibrated: bool = True) -> tuple[Runs, np.ndarray, np.ndarray]:
    """Runs of (score, label) cells, each score with a negative and a positive run."""
    rng = np.random.default_rng(seed)
    v = np.repeat(np.sort(rng.uniform(0.02, 0.98, n_scores)), 2)
    if constant:
        v[:] = 0.4
    label = np.tile([0, 1], n_scores)
    rate = v if calibrated else np.full(v.size, 0.5)
    mean = np.where(label == 1, rate, 1 - rate) * per_run
    count = 1 + rng.poisson(mean)
    return Runs(v, label, count), np.repeat(label, count).astype(np.int8), np.repeat(v, count)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= TOL * max(1.0, abs(a))


@pytest.mark.parametrize(("seed", "n_scores", "per_run", "kw"), [
    (0, 300, 40, {}),
    (1, 2000, 6, {}),
    (2, 20, 900, {}),                              # few distinct scores, long runs
    (3, 300, 40, {"constant": True}),              # one tied block: the tied-window rule
    (4, 300, 40, {"calibrated": False}),
])
def test_suite_and_curve_equal_row_functions(seed: int, n_scores: int, per_run: int,
                                             kw: dict) -> None:
    runs, y, p = _runs(seed, n_scores, per_run, **kw)
    assert runs.n == y.size > 5000
    for opts in ({}, {"max_exact": 1000, "grid": 100}):  # singles; intersections' fit
        want = calibration_suite(y, p, assume_sorted=True, **opts)
        got = runs_calibration_suite(runs, **({"grid": opts["grid"]} if opts else {}))
        assert all(_close(want[k], got[k]) for k in want), (want, got)
    want_c = reliability_curve(y, p, 10, assume_sorted=True)
    got_c = runs_reliability_curve(runs, 10)
    assert want_c.keys() == got_c.keys()
    for key in want_c:
        assert len(want_c[key]) == len(got_c[key]), key
        assert all(_close(a, b) for a, b in zip(want_c[key], got_c[key])), key
    assert got_c["n"] == want_c["n"]  # counts exactly


def test_runs_quantiles_and_lookup() -> None:
    """Row lookups and quantiles of the runs are numpy's on the expanded rows."""
    runs, _, p = _runs(5, 50, 10)
    rows = np.array([0, 1, 7, p.size // 2, p.size - 1, -1])
    assert np.array_equal(runs.at(rows), p[rows])
    q = np.linspace(0, 1, 37)
    assert np.array_equal(runs.quantile(q), np.quantile(p, q))
    t = np.array([0.0, 0.3, p[40], 1.0])
    assert np.array_equal(runs.first_at_least(t), np.searchsorted(p, t, side="left"))
    assert np.array_equal(runs.first_above(t), np.searchsorted(p, t, side="right"))
