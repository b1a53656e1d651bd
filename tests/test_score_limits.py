"""The AUROC score limits (metrics/_scorekernels.py) are the numpy formulation bit for bit.

``_reference`` is ``auc_score_limits`` as it was written before the bisection moved to
``_scorekernels`` (vectorised numpy, ``(a - theta) ** 2``), kept here verbatim as the
independent reference; the compiled path and the numpy fallback must equal it exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecgaudit.metrics import _scorekernels
from ecgaudit.metrics._compile import plain
from ecgaudit.metrics._scorekernels import HAVE_NUMBA, auc_limit, auc_limits
from ecgaudit.metrics._smallsample import auc_score_limits

PATHS = [False, True] if HAVE_NUMBA else [False]


def _reference(auc, m, n, z, deff=1.0, iterations=60):  # type: ignore[no-untyped-def]
    arr = [np.asarray(x, dtype=np.float64) for x in (auc, m, n, z, deff)]
    a, m, n, z, d = np.broadcast_arrays(*arr)
    ok = np.isfinite(a) & (m > 0) & (n > 0) & np.isfinite(d)
    a = np.where(ok, np.clip(a, 0.0, 1.0), 0.5)
    m, n = np.where(ok, m, 1.0), np.where(ok, n, 1.0)
    zz = z * z * np.where(ok, d, 1.0)

    def hm(theta):  # type: ignore[no-untyped-def]
        ns = (m + n) / 2.0
        bracket = 1.0 + (ns - 1.0) * ((1.0 - theta) / (2.0 - theta) + theta / (1.0 + theta))
        return theta * (1.0 - theta) * bracket / (m * n)

    def f(theta):  # type: ignore[no-untyped-def]
        return (a - theta) ** 2 - zz * hm(theta)

    lo, hi = np.zeros_like(a), a.copy()
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        inside = f(mid) < 0
        hi, lo = np.where(inside, mid, hi), np.where(inside, lo, mid)
    lower = hi
    lo, hi = a.copy(), np.ones_like(a)
    for _ in range(iterations):
        mid = (lo + hi) / 2.0
        inside = f(mid) < 0
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    low = np.where(a <= 0.0, 0.0, lower)
    high = np.where(a >= 1.0, 1.0, lo)
    return np.where(ok, low, np.nan), np.where(ok, high, np.nan)


def _inputs(seed: int, size: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    auc = rng.uniform(0.0, 1.0, size)
    m = rng.integers(1, 5000, size).astype(float)
    n = rng.integers(1, 50000, size).astype(float)
    z = rng.uniform(0.0, 8.0, size)
    d = np.where(rng.random(size) < 0.4, rng.uniform(1.0, 4.0, size), 1.0)
    edge_auc = [0.0, 1.0, np.nan, np.inf, -0.2, 1.3, 1e-300, 1 - 1e-16, 0.5, 0.5, 0.5,
                0.5, 0.5, 0.5, 0.97, 0.03, 0.5, 0.5, 0.9, 0.9]
    edge_m = [5, 5, 5, 5, 5, 5, 3, 3, 0, 10, -1, np.nan, 1, 1e9, 1, 2, 1e12, 1, 3e8, 7]
    edge_n = [5, 5, 5, 5, 5, 5, 3, 3, 10, 0, 10, 10, 1, 1e9, 1e9, 1, 1e12, 1, 1, 7]
    edge_z = [1.96, 1.96, 1.96, 1.96, 1.96, 1.96, 1.96, 1.96, 1.96, 1.96, 1.96, 1.96,
              1e-9, 40.0, 1.96, 0.0, 1.96, 1.96, np.nan, 1.96]
    edge_d = [1.0, 2.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5,
              1.0, 9.0, np.nan, 1.0, np.inf]
    k = len(edge_auc)
    auc[:k], m[:k], n[:k], z[:k], d[:k] = edge_auc, edge_m, edge_n, edge_z, edge_d
    return auc, m, n, z, d


@pytest.mark.parametrize("compiled", PATHS)
@pytest.mark.parametrize("seed", [0, 1])
def test_limits_equal_the_numpy_formulation(seed: int, compiled: bool) -> None:
    args = _inputs(seed, 400)
    want = _reference(*args)
    got = auc_limits(*args, compiled=compiled)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)  # bit for bit, nan in the same places
    low, high = want
    assert np.isnan(low[2]) and np.isnan(high[8]) and np.isnan(high[17])
    assert low[0] == 0.0 and high[1] == 1.0 and 0.0 < high[0] < 1.0 and 0.0 < low[1] < 1.0
    assert np.sum(np.isfinite(low)) > 350  # mostly defined: the bisection is exercised
    assert np.all(low[np.isfinite(low)] <= high[np.isfinite(low)])


@pytest.mark.parametrize("iterations", [1, 7, 60, 80])
def test_public_entry_broadcasts_and_keeps_shapes(iterations: int) -> None:
    auc = np.array([[0.6, 0.95, 1.0], [0.0, np.nan, 0.7]])
    m, n = np.array([3.0, 40.0, 1200.0]), 50.0
    z = np.array([[1.0], [2.5]])
    for deff in (1.0, np.array([1.0, 1.8, 3.0])):
        got = auc_score_limits(auc, m, n, z, deff, iterations)
        want = _reference(auc, m, n, z, deff, iterations)
        for g, w in zip(got, want):
            assert g.shape == w.shape == (2, 3)
            np.testing.assert_array_equal(g, w)
    scalar = auc_score_limits(0.83, 17, 240, 1.959963984540054)
    ref = _reference(0.83, 17, 240, 1.959963984540054)
    for g, w in zip(scalar, ref):
        assert isinstance(g, np.ndarray) and g.shape == () and g == w


@pytest.mark.skipif(not HAVE_NUMBA, reason="the compiled kernel needs numba")
def test_one_end_is_the_scalar_kernel() -> None:
    auc, m, n, z, d = _inputs(3, 60)
    low, high = _reference(auc, m, n, z, d)
    for i in range(auc.size):
        got = (auc_limit(auc[i], m[i], n[i], z[i], d[i], 60, False),
               auc_limit(auc[i], m[i], n[i], z[i], d[i], 60, True))
        np.testing.assert_array_equal(np.array(got), np.array([low[i], high[i]]))


@pytest.mark.skipif(not HAVE_NUMBA, reason="compares numba's lowering with numpy")
def test_square_lowers_as_one_product() -> None:
    # The kernel writes ``diff * diff`` for numpy's ``(a - theta) ** 2``; both, and a
    # compiled ``x ** 2``, are the same rounded product on arbitrary doubles.
    import numba

    pow2 = numba.njit(lambda x: x ** 2)
    rng = np.random.default_rng(9)
    x = np.concatenate([rng.normal(0.0, 1.0, 200), rng.uniform(-1e150, 1e150, 50),
                        [1e-160, 3e-200, 0.0, -0.0, np.inf, np.nan]])
    np.testing.assert_array_equal(np.array([pow2(v) for v in x]), x ** 2)
    np.testing.assert_array_equal(x * x, x ** 2)
    gap = _scorekernels.score_gap
    args = (0.3, 0.8, 12.0, 30.0, 3.84)
    assert gap(*args) == plain(gap)(*(np.float64(v) for v in args))
