"""The calibration suite's fused passes (metrics/_suitekernels.py) equal numpy exactly."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaudit.metrics import _calsuite
from ecgaudit.metrics._compile import HAVE_NUMBA
from ecgaudit.metrics._suitekernels import interp_abs_error

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="compiled kernels need numba")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_interp_abs_error_is_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.sort(np.round(rng.beta(2, 5, 20_000), 3))  # ties, and scores on the knots
    xp = np.unique(np.quantile(p, np.linspace(0, 1, 97)))
    fp = rng.random(xp.size)
    fp[[5, 6, 40]] = np.nan  # windows without two weighted rows
    fp[70] = np.inf
    out = np.empty(p.size)
    top = interp_abs_error(p, xp, fp, out)
    want = np.abs(np.interp(p, xp, fp) - p)
    np.testing.assert_array_equal(out, want)
    assert np.isnan(top) and np.isnan(np.max(want))
    fp[np.isnan(fp) | np.isinf(fp)] = 0.5
    top = interp_abs_error(p, xp, fp, out)
    want = np.abs(np.interp(p, xp, fp) - p)
    np.testing.assert_array_equal(out, want)
    assert top == np.max(want)
    inner = p[(p > xp[3]) & (p < xp[-4])]  # scores inside the knots: interpolation only
    out = np.empty(inner.size)
    interp_abs_error(inner, xp, fp, out)
    np.testing.assert_array_equal(out, np.abs(np.interp(inner, xp, fp) - inner))


@pytest.mark.parametrize("n", [30_000, 6_000])
def test_suite_error_pass_equals_numpy_path(n: int) -> None:
    rng = np.random.default_rng(n)
    p = np.sort(rng.beta(2, 5, n))
    y = (rng.random(p.size) < p ** 1.2).astype(float)
    err, top = _calsuite._abs_error(p, y, 2 / 3, 5000, 400, _calsuite.LOWESS_BINS)
    want = _calsuite._smooth_at_points(p, y, 2 / 3, 5000, 400, _calsuite.LOWESS_BINS)
    want = np.abs(want - p)  # the numpy steps the fused pass replaces
    np.testing.assert_array_equal(err, want)
    assert top == np.max(want) > 0


@pytest.mark.parametrize("kind", ["abs", "normal", "tied", "heavy"])
def test_select_ranks_and_quantiles_are_numpy(kind: str) -> None:
    from ecgaudit.metrics._quantiles import SELECT_ROWS, median_and_quantile
    from ecgaudit.metrics._suitekernels import select_ranks

    rng = np.random.default_rng(len(kind))
    n = SELECT_ROWS * 3 + 1
    a = {"abs": np.abs(rng.normal(0, 0.05, n)), "normal": rng.normal(0, 1, n),
         "tied": np.round(rng.random(n), 2), "heavy": rng.standard_cauchy(n)}[kind]
    a[:50] = 0.0
    ranks = np.array([0, 7, n // 2 - 1, n // 2, int(0.9 * (n - 1)), n - 1])
    np.testing.assert_array_equal(select_ranks(a, ranks), np.sort(a)[ranks])
    for m in (n, n - 1):  # odd and even sizes
        b = a[:m].copy()
        med, q90 = median_and_quantile(b, 0.9)
        assert med == np.median(a[:m]) and q90 == np.quantile(a[:m], 0.9)
