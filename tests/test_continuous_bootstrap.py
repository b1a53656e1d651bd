"""Continuous bootstrap: the project's draws, compiled == numpy, clustered by patient."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaudit.metrics._bootsample import replicate_weights
from ecgaudit.metrics._contboot import BLOCK, ContinuousSample
from ecgaudit.metrics._continuous import metric_values, sufficient_stats
from ecgaudit.metrics._kernels import HAVE_NUMBA


class _G:
    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes


def _setup(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.normal(60, 15, n)
    x = y + rng.normal(2, 8, n)
    codes = [np.zeros(n, np.int64), rng.integers(0, 3, n), rng.integers(0, 2, n)]
    patient = rng.integers(0, n // 2, n)
    return y, x, codes, patient


@pytest.mark.parametrize("clustered", [False, True])
def test_replicates_use_the_binary_bootstrap_draws(clustered: bool) -> None:
    y, x, codes, patient = _setup()
    pat = patient if clustered else None
    cs = ContinuousSample(y, x, codes, [1, 3, 2], tolerance=5.0, patient=pat, seed=11,
                          compiled=False)
    reps = cs.replicates(7)
    w = replicate_weights([_G(c) for c in codes], y.size, n_boot=7, seed=11, patient=pat)
    rows = sufficient_stats(y, x, 5.0, cs.shift)
    for k, c in enumerate(codes):
        for g in range(int(c.max()) + 1):
            want = metric_values((w * (c == g)) @ rows, cs.shift)
            np.testing.assert_allclose(reps[k][:, g, :], want, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed")
@pytest.mark.parametrize("clustered", [False, True])
def test_compiled_equals_numpy(clustered: bool) -> None:
    y, x, codes, patient = _setup(seed=2)
    pat = patient if clustered else None
    a = ContinuousSample(y, x, codes, [1, 3, 2], tolerance=5.0, patient=pat, seed=3,
                         compiled=True).replicates(20)
    b = ContinuousSample(y, x, codes, [1, 3, 2], tolerance=5.0, patient=pat, seed=3,
                         compiled=False).replicates(20)
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(ra, rb, rtol=1e-9, atol=1e-11)


def test_seed_reproducible_and_blocks_independent() -> None:
    y, x, codes, _ = _setup(seed=4)
    one = ContinuousSample(y, x, codes, [1, 3, 2], seed=5).replicates(BLOCK + 3)
    two = ContinuousSample(y, x, codes, [1, 3, 2], seed=5).replicates(BLOCK + 3)
    first = ContinuousSample(y, x, codes, [1, 3, 2], seed=5).replicates(4)
    other = ContinuousSample(y, x, codes, [1, 3, 2], seed=6).replicates(4)
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(one, two))
    np.testing.assert_array_equal(one[1][:4], first[1])
    assert not np.allclose(one[1][:4], other[1], equal_nan=True)


def test_stratified_replicates_keep_group_sizes() -> None:
    y, x, codes, _ = _setup(seed=6)
    cs = ContinuousSample(y, x, codes, [1, 3, 2], seed=1)
    cells = cs._replicate_cells(range(5))
    sizes = cs.group_stats(cells)[1][..., 0]
    np.testing.assert_array_equal(sizes, np.tile(np.bincount(codes[1]), (5, 1)))
