"""One layout, one assemble, one formula: the binary engines share their pieces (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import logit
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from ecgaudit.metrics import _binfused, _drawkernels, _ecebins, _hashrng, _kernels, _newton
from ecgaudit.metrics._bootstats import replicate_stats
from ecgaudit.metrics._calibration import ece, logistic_recalibration
from ecgaudit.metrics._cells import build_cells
from ecgaudit.metrics._compile import plain
from ecgaudit.metrics._fastboot import FastEngine, start_arrays
from ecgaudit.metrics._suffstats import EXTENDED_INDEX, F_STATS, I_STATS, SuffStats, assemble

_MASK = (1 << 64) - 1


def _splitmix_reference(z: int) -> int:
    """SplitMix64's finaliser in plain Python integers (Steele, Lea & Flood 2014)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _data(n: int = 3000, seed: int = 0):
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, n)
    y = (rng.random(n) < 0.2 + 0.1 * codes).astype(np.int8)
    p = np.round(np.clip(0.5 * rng.random(n) + 0.4 * y, 0.0, 1.0), 2)  # ties, saturated 0s
    return y, p, codes


def test_splitmix64_is_one_function_with_the_published_first_output():
    # SplitMix64 seeded with 0: the first output is mix64(0 + golden) = 0xE220A8397B1DCDAF.
    assert _hashrng.splitmix64(_hashrng.GOLDEN) == 0xE220A8397B1DCDAF
    rng = np.random.default_rng(1)
    for z in rng.integers(0, 2**63, 50, dtype=np.int64):
        assert _hashrng.splitmix64(int(z) * 3) == _splitmix_reference((int(z) * 3) & _MASK)
    # The kernels compile the very functions the numpy path runs (no second copy).
    assert plain(_drawkernels._mix64) is plain(_hashrng.mix64)
    assert plain(_drawkernels._counter) is plain(_hashrng.slot_counter)
    key = _hashrng.replicate_keys(7, range(3))[2]
    u = _hashrng.uniforms(key, 500)
    sizes = rng.integers(1, 40, 500)
    picks = [_drawkernels.pick(key, j, int(m)) for j, m in enumerate(sizes)]
    assert picks == [min(int(u[j] * m), m - 1) for j, m in enumerate(sizes)]


@pytest.mark.parametrize("n", [0, 1, 7, 10, 11, 99, 1000])
def test_ece_bins_are_numpy_array_split_and_ece_matches_its_definition(n):
    bins = min(10, n) if n else 1
    q, rem = divmod(n, bins)
    ends = plain(_ecebins.edge)(np.arange(bins + 1), q, rem)
    sizes = [a.size for a in np.array_split(np.arange(n), bins)]
    assert np.diff(ends).tolist() == sizes
    if n:
        rng = np.random.default_rng(n)
        y, p = rng.integers(0, 2, n), rng.random(n)
        o = np.lexsort((y, p))
        want = sum(abs(y[i].sum() - p[i].sum()) for i in np.array_split(o, bins)) / n
        assert ece(y, p) == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_one_newton_fit_matches_statsmodels_compiled_and_plain():
    y, p, _ = _data(2000, seed=3)
    p = np.clip(p, 0.01, 0.99)
    x = logit(p)
    ref = sm.Logit(y, sm.add_constant(x)).fit(disp=0).params
    w1 = y.astype(np.int64)
    w0 = 1 - w1
    for fit in (_newton.fit_weighted, plain(_newton.fit_weighted)):
        a, b = fit(x, w0, w1, 0.0, 1.0)
        assert (a, b) == pytest.approx(tuple(ref), rel=1e-7, abs=1e-9)
    got = logistic_recalibration(y, p)
    assert got.converged
    assert (got.intercept, got.slope) == pytest.approx(tuple(ref), rel=1e-7, abs=1e-9)
    # the binned engine's fit: fit_weighted's rules with vectorised sums (tests/test_binned_order)
    binned = _binfused.fit_vectorised(x, w0, w1, 0.0, 1.0, np.empty(x.size),
                                      np.empty(x.size, dtype=np.int64))
    assert binned == pytest.approx(tuple(ref), rel=1e-7, abs=1e-9)
    assert binned == pytest.approx(_newton.fit_weighted(x, w0, w1, 0.0, 1.0), rel=1e-12,
                                   abs=1e-12)


def test_assemble_gives_the_reference_metrics_from_the_numpy_engines_statistics():
    y, p, codes = _data()
    cells = build_cells(y, p, codes, 4, 0.5)
    stats = replicate_stats(cells, np.ones((1, y.size), dtype=np.int64))
    assert stats.ints.shape == (1, len(I_STATS), 4)
    assert stats.floats.shape == (1, len(F_STATS), 4)
    out = assemble(stats)
    for g in range(4):
        m = codes == g
        assert stats["n"][0, g] == m.sum() and stats["pos"][0, g] == y[m].sum()
        assert out[0, EXTENDED_INDEX["auroc"], g] == pytest.approx(roc_auc_score(y[m], p[m]))
        assert out[0, EXTENDED_INDEX["auprc"], g] == pytest.approx(
            average_precision_score(y[m], p[m]))
        assert out[0, EXTENDED_INDEX["brier"], g] == pytest.approx(brier_score_loss(y[m], p[m]))
        assert out[0, EXTENDED_INDEX["ece"], g] == pytest.approx(ece(y[m], p[m]))
        assert np.isnan(out[0, EXTENDED_INDEX["bpsn_auc"], g])  # not counted by this engine


@pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="numba is a dev dependency")
def test_numpy_and_compiled_engines_fill_the_same_integer_statistics():
    y, p, codes = _data(seed=5)
    rng = np.random.default_rng(9)
    w = rng.integers(0, 3, (3, y.size)).astype(np.int32)
    cells = build_cells(y, p, codes, 4, 0.5)
    numpy_stats = replicate_stats(cells, w)
    fast = FastEngine([(y, p, 0.5)], [codes], [4], codes)
    compiled = SuffStats.zeros(1, 3, n_slots=4)
    a0, b0 = start_arrays(None, 1, 4)
    s = fast.sorted
    _kernels.task_stats(w, s["orders"], s["ys"], s["ps"], s["xs"], s["fs"], s["newblk"],
                        fast.gmap, fast.refslot, fast.n_fine, fast.thresholds, 10, True, a0, b0,
                        compiled.ints, compiled.floats)
    for name in ("n", "pos", "tp", "flagged", "u2"):
        np.testing.assert_array_equal(numpy_stats[name], compiled.task(0)[name], err_msg=name)
    for name in ("sum_p", "sq", "ap", "ece", "cal_a", "cal_b"):
        np.testing.assert_allclose(numpy_stats[name], compiled.task(0)[name], rtol=1e-9,
                                   atol=1e-9, err_msg=name)
