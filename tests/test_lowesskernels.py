"""Compiled lowess kernels against the numpy reference (issue 19 item 5).

The kernels may change the last bits of the fits (sums in another order), never more than
1e-12 (absolute; relative above 1); numpy's quantile/median shortcuts and the counting
sort must be bit for bit what they replace; an audit with the kernels differs from one
with the numpy reference only in the lowess-fitted leaves of ``results.json``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

import ecgaudit
from ecgaudit.config import AttributeConfig, AuditConfig, TaskConfig
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.metrics import _calsuite
from ecgaudit.metrics._calsuite import binned_lowess_fit, calibration_suite, lowess_fit
from ecgaudit.metrics._compile import HAVE_NUMBA
from ecgaudit.metrics._lowesskernels import split_by_group
from ecgaudit.metrics._quantiles import median_and_quantile, sorted_quantile

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="the kernels need numba")
TOL = 1e-12


def _agree(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference (absolute; relative above 1); nan exactly where the other is."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    if not ok.any():
        return 0.0
    return float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(1.0, np.abs(b[ok]))))


def _scores(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "random":
        return rng.beta(2, 5, n)
    if kind == "tied":
        return np.round(rng.random(n), 1)
    if kind == "separated":  # two clusters at the ends of [0, 1]
        return np.where(rng.random(n) < 0.5, rng.random(n) * 0.05, 0.95 + rng.random(n) * 0.05)
    return np.full(n, 0.3)  # constant


def _data(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.sort(_scores(kind, n, rng))
    return x, (rng.random(n) < np.clip(x * 1.2, 0, 1)).astype(float)


KINDS = ["random", "tied", "separated", "constant"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [3, 4, 7, 30, 400, 2500])
def test_exact_kernel_matches_numpy(kind: str, n: int) -> None:
    x, y = _data(kind, n, n)
    for frac in (2 / 3, 0.1):
        assert _agree(lowess_fit(x, y, frac, compiled=True),
                      lowess_fit(x, y, frac, compiled=False)) <= TOL
        xv = np.unique(np.quantile(x, np.linspace(0, 1, 37)))
        assert _agree(lowess_fit(x, y, frac, xv, compiled=True),
                      lowess_fit(x, y, frac, xv, compiled=False)) <= TOL


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n, bins, grid", [(5, 4096, 5), (300, 64, 50), (3000, 4096, 100),
                                           (20_000, 4096, 100), (200_000, 4096, 400)])
def test_binned_kernel_matches_numpy(kind: str, n: int, bins: int, grid: int) -> None:
    x, y = _data(kind, n, n + 1)
    xv = np.unique(np.quantile(x, np.linspace(0, 1, grid)))
    for frac in (2 / 3, 0.3):
        got = binned_lowess_fit(x, y, frac, xv, bins)
        ref = binned_lowess_fit(x, y, frac, xv, bins, compiled=False)
        assert _agree(got, ref) <= TOL


def test_binned_kernel_matches_numpy_at_1m_rows() -> None:
    x, y = _data("random", 1_000_000, 7)
    xv = np.unique(np.quantile(x, np.linspace(0, 1, 400)))
    got = binned_lowess_fit(x, y, 2 / 3, xv)
    assert _agree(got, binned_lowess_fit(x, y, 2 / 3, xv, compiled=False)) <= TOL
    assert np.all(np.isfinite(got))


def test_exact_kernel_still_matches_statsmodels() -> None:
    sm = pytest.importorskip("statsmodels.nonparametric.smoothers_lowess")
    x, y = _data("random", 800, 11)
    ref = sm.lowess(y, x, frac=0.4, it=0, delta=0.0, return_sorted=False)
    np.testing.assert_allclose(lowess_fit(x, y, 0.4, compiled=True), ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_suite_matches_numpy(monkeypatch, kind: str) -> None:
    rng = np.random.default_rng(3)
    for n, fit in ((900, {}), (8000, {}), (3000, {"max_exact": 1000, "grid": 100})):
        p = _scores(kind, n, rng)
        y = (rng.random(n) < p).astype(int)
        got = calibration_suite(y, p, **fit)
        monkeypatch.setattr(_calsuite, "COMPILED", False)
        ref = calibration_suite(y, p, **fit)
        monkeypatch.setattr(_calsuite, "COMPILED", True)
        for key in ("ici", "e50", "e90", "emax"):
            assert _agree(got[key], ref[key]) <= TOL, (kind, n, key)


def test_quantile_shortcuts_are_numpys_bits() -> None:
    rng = np.random.default_rng(5)
    for t in range(400):
        n = int(rng.integers(1, 2000))
        a = rng.random(n) if t % 2 else np.round(rng.beta(0.5, 3, n), 2)
        s = np.sort(a)
        for grid in (400, 100, 50, 2):
            q = np.linspace(0, 1, grid)
            assert np.array_equal(sorted_quantile(s, q), np.quantile(s, q))
        med, q90 = median_and_quantile(a.copy(), 0.9)
        assert (med, q90) == (float(np.median(a)), float(np.quantile(a, 0.9)))


def test_split_by_group_is_a_stable_sort() -> None:
    rng = np.random.default_rng(9)
    codes = rng.integers(0, 7, 10_000)
    codes[codes == 3] = 2  # an empty group
    y, p = rng.integers(0, 2, codes.size), rng.random(codes.size)
    ys, ps = split_by_group(codes, 7, y, p)
    idx = np.argsort(codes, kind="stable")
    assert np.array_equal(ys, y[idx]) and np.array_equal(ps, p[idx]) and ys.dtype == y.dtype


def _compare_tool():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_results.py"
    spec = importlib.util.spec_from_file_location("compare_results", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_audit_differs_only_in_lowess_leaves(monkeypatch, tmp_path) -> None:
    frame = make_synthetic_cohort(8_000, seed=2, tasks=["a"]).frame
    cfg = AuditConfig(tasks=[TaskConfig(name="a", label="y_a", score="p_a")],
                      attributes={"race": AttributeConfig(), "sex": AttributeConfig(),
                                  "age": AttributeConfig(kind="age")})
    docs = []
    for compiled in (False, True):
        monkeypatch.setattr(_calsuite, "COMPILED", compiled)
        ecgaudit.audit(frame, cfg).save(tmp_path / str(compiled))
        docs.append(json.loads((tmp_path / str(compiled) / "results.json").read_text()))
    res = _compare_tool().compare(*docs)
    assert res["problems"] == []
    assert res["identical"] > 1000  # everything else, compared leaf by leaf
    # the checker does catch a change outside the lowess leaves, and a large one inside
    docs[1]["metrics"][0]["estimate"] += 1e-15
    docs[1]["extras"]["calibration_suite"][0]["ici"] += 1e-9
    assert len(_compare_tool().compare(*docs)["problems"]) == 2


def test_bin_edges_merge_is_union1d() -> None:
    rng = np.random.default_rng(4)
    for n in (5000, 20_000, 300_000):
        for kind in KINDS:
            x = np.sort(_scores(kind, n, rng))
            half = 2048
            mass = (np.arange(half + 1, dtype=np.int64) * n) // half
            width = np.searchsorted(x, np.linspace(x[0], x[-1], half + 1)[1:-1], side="left")
            expected = np.union1d(mass, width.astype(np.int64))
            got = _calsuite._bin_edges(x, 4096)
            assert got.dtype == expected.dtype and np.array_equal(got, expected)
