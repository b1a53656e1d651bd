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


@pytest.mark.parametrize(("n", "decimals", "frac"), [
    (20_000, None, 2.0 / 3.0),
    (20_000, None, 0.05),           # narrow windows: many cut bins
    (20_000, 2, 0.3),               # ties within runs of one row
    (300, None, 2.0 / 3.0),         # fewer rows than bins: one row per bin
    (6_000, 1, 2.0 / 3.0),          # tied blocks of at least k rows: the tie rule
])
def test_runs_of_one_row_equal_binned_kernel(n: int, decimals: int | None,
                                             frac: float) -> None:
    """Runs of count 1 give the compiled kernel's fit on those rows (one fitting loop)."""
    from ecgaudit.metrics._calsuite import binned_lowess_fit
    from ecgaudit.metrics._runsuite import binned_lowess_runs

    rng = np.random.default_rng(n + int(100 * frac))
    x = np.sort(rng.uniform(0.0, 1.0, n))
    if decimals is not None:
        x = np.round(x, decimals)
    y = (rng.uniform(size=n) < x).astype(np.float64)
    xv = np.unique(np.quantile(x, np.linspace(0.0, 1.0, 400)))
    want = binned_lowess_fit(x, y, frac, xv, compiled=True)
    got = binned_lowess_runs(Runs(x, y, np.ones(n, dtype=np.int64)), frac, xv)
    assert np.array_equal(np.isnan(want), np.isnan(got))
    assert np.isfinite(want).sum() > 0.9 * xv.size
    assert np.nanmax(np.abs(want - got)) <= 1e-13
