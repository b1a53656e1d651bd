"""Compiled engine vs numpy fallback vs row-level definitions; binned mode; ranking; DeLong."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaudit.errors import InputError
from ecgaudit.metrics import _evaluate, _kernels
from ecgaudit.metrics._binned import CAL_FACTOR, CAL_WIDTH, QuantisedTask, quantize
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._bootstrap import (
    Grouping,
    TaskArrays,
    bootstrap_intervals,
    replicate_weights,
)
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._crossauc import cross_auc
from ecgaudit.metrics._delong import delong_auc_variance
from ecgaudit.metrics._evaluate import Evaluator, resolve_engine
from ecgaudit.metrics._fastboot import EXTENDED, EXTENDED_INDEX
from ecgaudit.metrics._points import group_point_estimates
from ecgaudit.metrics._ranking import bnsp_auc, bpsn_auc, xauc
from ecgaudit.metrics._table import group_stats
from ecgaudit.schema import METRICS, RATE_METRICS
from tests.test_bootstrap_exact import CLIP, _assert_close, _cohort, _reference

pytestmark = pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="numba is a dev dependency")

#: Metrics computed from integer statistics only: must be identical across engines.
INTEGER_METRICS = ("auroc", "bpsn_auc", "bnsp_auc", "xauc_group_vs_ref", "xauc_ref_vs_group",
                   *RATE_METRICS)


def _evaluators(tasks, groupings, patient=None, bins=None, seed=3):
    strata = finest_strata([g.codes for g in groupings], tasks[0].y.size)
    sampler = Sampler(strata.codes, patient, seed)
    return [Evaluator(tasks, groupings, strata.codes, sampler, engine=engine, bins=bins,
                      clip=CLIP, ece_bins=10, skip=frozenset())
            for engine in ("compiled", "numpy")], sampler


def _assert_engines_agree(a, b) -> None:
    for row_a, row_b in zip(a, b):
        for x, y in zip(row_a, row_b):
            assert x.shape == y.shape
            assert np.array_equal(np.isnan(x), np.isnan(y)), "different undefined cells"
            for metric in EXTENDED:
                m = EXTENDED_INDEX[metric]
                if metric in INTEGER_METRICS:
                    assert np.array_equal(x[..., m, :], y[..., m, :], equal_nan=True), metric
                else:
                    # Newton stops at a step < 1e-5 (error ~1e-10), from other start values
                    tol = 1e-8 if metric.startswith("cal_") else 1e-10
                    np.testing.assert_allclose(x[..., m, :], y[..., m, :], rtol=tol,
                                               atol=tol / 10, err_msg=metric)


@pytest.mark.parametrize("clustered", [False, True])
def test_compiled_and_numpy_draws_are_identical(clustered: bool) -> None:
    _tasks, groupings, patient = _cohort(n=900, seed=2)
    pat = patient if clustered else None
    compiled = replicate_weights(groupings, 900, n_boot=7, seed=9, patient=pat, compiled=True)
    numpy = replicate_weights(groupings, 900, n_boot=7, seed=9, patient=pat, compiled=False)
    assert np.array_equal(compiled, numpy)
    assert compiled.sum(axis=1).min() > 0


@pytest.mark.parametrize("clustered", [False, True])
def test_compiled_engine_equals_numpy_engine_on_the_same_draws(clustered: bool) -> None:
    tasks, groupings, patient = _cohort(n=1200, seed=5)
    (fast, slow), sampler = _evaluators(tasks, groupings, patient if clustered else None)
    est_f, var_f = fast.estimates()
    est_s, var_s = slow.estimates()
    _assert_engines_agree(est_f, est_s)
    for rf, rs in zip(var_f, var_s):
        for a, b in zip(rf, rs):
            np.testing.assert_allclose(a, b, rtol=1e-10)
    _assert_engines_agree(fast.replicates(range(5)), slow.replicates(range(5)))
    jack = sampler.jackknife(6)
    _assert_engines_agree(fast.weighted(jack), slow.weighted(jack))


def test_compiled_replicate_equals_row_level_definitions_on_the_same_draw() -> None:
    tasks, groupings, patient = _cohort(n=700, seed=8)
    (fast, _), sampler = _evaluators(tasks, groupings, patient)
    fast.estimates()
    w = sampler.draw(range(3))
    reps = fast.weighted(w)
    for t, task in enumerate(tasks):
        for k, g in enumerate(groupings):
            for b in range(w.shape[0]):
                for gi in range(len(g.groups)):
                    rows = np.repeat(np.flatnonzero(g.codes == gi), w[b][g.codes == gi])
                    ref = _reference(task.y[rows].astype(int), task.p[rows], task.threshold)
                    _assert_close(reps[t][k][b, :len(METRICS), gi], ref,
                                  f"rep {b} {task.name}/{g.groups[gi]}")


def test_ranking_metrics_and_delong_match_their_definitions() -> None:
    tasks, groupings, _ = _cohort(n=1000, seed=12)
    (fast, _), sampler = _evaluators(tasks, groupings)
    est, var = fast.estimates()
    w = sampler.draw(range(2))
    reps = fast.weighted(w)
    for t, task in enumerate(tasks):
        y, p = task.y, task.p
        for k, g in enumerate(groupings):
            for gi in range(len(g.groups)):
                in_g = g.codes == gi
                e = est[t][k][:, gi]
                assert e[EXTENDED_INDEX["bpsn_auc"]] == pytest.approx(
                    bpsn_auc(y, p, in_g), nan_ok=True, abs=1e-12)
                assert e[EXTENDED_INDEX["bnsp_auc"]] == pytest.approx(
                    bnsp_auc(y, p, in_g), nan_ok=True, abs=1e-12)
                if g.reference is not None and gi != g.reference:
                    in_r = g.codes == g.reference
                    assert e[EXTENDED_INDEX["xauc_group_vs_ref"]] == pytest.approx(
                        xauc(y, p, in_g, in_r), abs=1e-12, nan_ok=True)
                    assert e[EXTENDED_INDEX["xauc_ref_vs_group"]] == pytest.approx(
                        xauc(y, p, in_r, in_g), abs=1e-12, nan_ok=True)
                    pos = in_g & (y == 1)
                    neg = in_r & (y == 0)
                    weighted = cross_auc(p[pos], p[neg], w[:, pos], w[:, neg])
                    np.testing.assert_allclose(
                        reps[t][k][:, EXTENDED_INDEX["xauc_group_vs_ref"], gi], weighted,
                        atol=1e-12, equal_nan=True)
                _auc, v = delong_auc_variance(y[in_g], p[in_g])
                assert var[t][k][gi] == pytest.approx(v, rel=1e-9, nan_ok=True)


def test_group_point_estimates_equal_group_stats_group_by_group() -> None:
    tasks, groupings, _ = _cohort(n=1500, seed=4)
    points = group_point_estimates(tasks, groupings, clip=CLIP, min_events=10)
    for t, task in enumerate(tasks):
        for k, g in enumerate(groupings):
            for gi in range(len(g.groups)):
                m = g.codes == gi
                ref = group_stats(task.y[m], task.p[m], task.threshold, clip=CLIP)
                got = points.stats[t][k][gi]
                assert (got.n, got.n_pos, got.counts) == (ref.n, ref.n_pos, ref.counts)
                assert got.auc_var == pytest.approx(ref.auc_var, rel=1e-9, nan_ok=True)
                for metric in METRICS:
                    a, b = got.values[metric], ref.values[metric]
                    assert a.status == b.status, (g.groups[gi], metric)
                    assert a.ci_method == b.ci_method
                    tol = 1e-7 if metric.startswith("cal_") else 1e-12
                    for x, y in ((a.estimate, b.estimate), (a.ci_low, b.ci_low),
                                 (a.ci_high, b.ci_high)):
                        assert x == pytest.approx(y, abs=tol, nan_ok=True), metric


def test_quantize_keeps_ties_together_and_the_threshold_as_an_edge() -> None:
    rng = np.random.default_rng(0)
    p = np.round(rng.beta(2, 5, 20_000), 3)
    bins_of, rep = quantize(p, 0.31, 4096)
    assert rep.size <= 4097
    assert np.all(np.diff(rep) > 0)  # bins increase with the score
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(bins_of[order]) >= 0)
    same = p[:, None] == p[None, :200]
    assert np.all((bins_of[:, None] == bins_of[None, :200])[same])  # tied scores share a bin
    assert np.array_equal(rep[bins_of] >= 0.31, p >= 0.31)  # confusion counts are exact
    for b in np.unique(bins_of)[:50]:
        members = p[bins_of == b]
        assert members.min() <= rep[b] <= members.max()
    q = QuantisedTask(p, 0.31, 4096, CLIP)
    assert np.all(np.diff(q.coarse_of) >= 0) and np.all(np.diff(q.x_cal) > 0)
    assert np.bincount(q.coarse_of).max() <= CAL_FACTOR
    x = np.log(np.clip(p, CLIP, 1 - CLIP) / (1 - np.clip(p, CLIP, 1 - CLIP)))
    cal_bin = q.coarse_of[bins_of]
    for c in range(q.x_cal.size):
        xs = x[cal_bin == c]
        several = np.unique(bins_of[cal_bin == c]).size > 1
        assert not several or np.ptp(xs) <= CAL_WIDTH + 1e-12
        assert q.x_cal[c] == pytest.approx(xs.mean())


@pytest.mark.parametrize("clustered", [False, True])
def test_binned_replicates_are_the_exact_replicates_of_the_quantised_scores(
        clustered: bool) -> None:
    tasks, groupings, patient = _cohort(n=1500, seed=6)
    (fast, slow), sampler = _evaluators(tasks, groupings, patient if clustered else None,
                                        bins=4096)
    _assert_engines_agree(fast.estimates()[0], slow.estimates()[0])
    _assert_engines_agree(fast.replicates(range(6)), slow.replicates(range(6)))
    jack = sampler.jackknife(5)
    _assert_engines_agree(fast.weighted(jack), slow.weighted(jack))


@pytest.mark.parametrize("clustered", [False, True])
@pytest.mark.parametrize("cap", [255, 1])
def test_fused_binned_replicates_equal_the_row_weight_path_bit_for_bit(
        clustered: bool, cap: int) -> None:
    # replicates() counts the draws per slot in one fused kernel; weighted() adds explicit
    # row weights cell by cell. Same draws -> the same numbers, bit for bit. cap = 1 sends
    # every repeated draw of a slot through the overflow list.
    tasks, groupings, patient = _cohort(n=1500, seed=6)
    (fast, _), sampler = _evaluators(tasks, groupings, patient if clustered else None,
                                     bins=4096)
    fast.estimates()
    fast._binned.cap = cap
    block = range(3, 9)
    fused = fast.replicates(block)
    unfused = fast.weighted(sampler.draw(block))
    assert sampler.draw(block).max() > 1  # repeated draws exist (the overflow path runs)
    for row_a, row_b in zip(fused, unfused):
        for a, b in zip(row_a, row_b):
            assert np.array_equal(a, b, equal_nan=True)


def test_binned_intervals_are_close_to_exact_intervals() -> None:
    # The binned mode's only approximation is the quantisation: every interval limit stays
    # within 5% of the exact interval's width (measured: at most 4%, for calibration
    # slope/intercept of groups of ~100 rows); rates at the threshold are unchanged.
    tasks, groupings, _ = _cohort(n=6000, seed=1)
    exact = bootstrap_intervals(tasks, groupings, n_boot=200, seed=4)
    binned = bootstrap_intervals(tasks, groupings, n_boot=200, seed=4, bins=4096)
    a = exact.metrics.set_index(["task", "attribute", "group", "metric"])
    b = binned.metrics.set_index(["task", "attribute", "group", "metric"]).loc[a.index]
    limits = ["ci_low", "ci_high"]
    diff = np.abs(a[limits].to_numpy() - b[limits].to_numpy()).max(axis=1)
    width = (a.ci_high - a.ci_low).to_numpy()
    ok = np.isfinite(diff)
    assert ok.sum() > 0.9 * len(a)
    assert np.all(diff[ok] <= 0.05 * width[ok] + 1e-12)
    rates = a.index.get_level_values("metric").isin(RATE_METRICS)
    assert np.nanmax(diff[rates]) == 0.0
    auroc = a.index.get_level_values("metric") == "auroc"
    assert np.nanmax(diff[auroc]) < 1e-3


def test_engines_give_the_same_intervals_and_ranking_table() -> None:
    tasks, groupings, patient = _cohort(n=900, seed=3)
    kw = {"n_boot": 40, "seed": 2, "patient": patient}
    a = bootstrap_intervals(tasks, groupings, engine="compiled", **kw)
    b = bootstrap_intervals(tasks, groupings, engine="numpy", **kw)
    for x, y in ((a.metrics, b.metrics), (a.disparities, b.disparities),
                 (a.ranking, b.ranking)):
        assert list(x.columns) == list(y.columns) and len(x) == len(y)
        for col in x.columns:
            if x[col].dtype.kind == "f":
                np.testing.assert_allclose(x[col], y[col], atol=1e-9, err_msg=col)
            else:
                assert x[col].tolist() == y[col].tolist(), col
    assert set(a.ranking.metric) == {"bpsn_auc", "bnsp_auc", "xauc_group_vs_ref",
                                     "xauc_ref_vs_group"}


def test_engine_choice_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="engine must be one of"):
        resolve_engine("gpu")
    monkeypatch.setenv(_evaluate.ENV, "cuda")
    with pytest.raises(InputError, match="environment variable ECGAUDIT_ENGINE"):
        resolve_engine("auto")
    monkeypatch.setenv(_evaluate.ENV, "numpy")
    assert resolve_engine("auto") == "numpy"
    monkeypatch.delenv(_evaluate.ENV)
    monkeypatch.setattr(_kernels, "HAVE_NUMBA", False)
    assert resolve_engine("auto") == "numpy"
    with pytest.raises(InputError, match="needs numba"):
        resolve_engine("compiled")
    with pytest.raises(InputError, match="bootstrap_bins must be between"):
        _evaluate.check_bins(100)


def test_engines_agree_on_empty_input_and_reject_no_groupings() -> None:
    empty = [TaskArrays("t", np.zeros(0, np.int8), np.zeros(0), 0.5)]
    grouping = [Grouping("overall", np.zeros(0, np.int32), ("all",), None)]
    a = bootstrap_intervals(empty, grouping, n_boot=5, seed=1, engine="compiled")
    b = bootstrap_intervals(empty, grouping, n_boot=5, seed=1, engine="numpy")
    assert a.metrics[["ci_low", "ci_high"]].isna().all().all()
    assert a.metrics.equals(b.metrics)
    with pytest.raises(InputError, match="at least one grouping"):
        bootstrap_intervals(empty, [], n_boot=5, seed=1)


def test_ranking_rows_are_the_same_with_and_without_bootstrap() -> None:
    tasks, groupings, _ = _cohort(n=600, seed=2)
    lone = Grouping("site", np.zeros(600, np.int32), ("A",), 0)  # one group, a reference
    points = group_point_estimates(tasks, [*groupings, lone]).ranking
    boot = bootstrap_intervals(tasks, [*groupings, lone], n_boot=20, seed=1).ranking
    key = ["task", "attribute", "group", "metric"]
    assert points[key].values.tolist() == boot[key].values.tolist()
    np.testing.assert_allclose(points.estimate, boot.estimate, atol=1e-12)
    assert "site" not in set(points.attribute)


def test_binned_bca_is_close_to_exact_bca() -> None:
    tasks, groupings, _ = _cohort(n=6000, seed=1)
    kw = {"n_boot": 200, "seed": 4, "method": "bca", "jackknife_blocks": 20}
    exact = bootstrap_intervals(tasks, groupings, **kw).metrics
    binned = bootstrap_intervals(tasks, groupings, bins=4096, **kw).metrics
    auroc = exact.metric == "auroc"
    diff = np.abs(exact.loc[auroc, ["ci_low", "ci_high"]].to_numpy()
                  - binned.loc[auroc, ["ci_low", "ci_high"]].to_numpy()).max(axis=1)
    width = (exact.ci_high - exact.ci_low)[auroc].to_numpy()
    ok = np.isfinite(diff)
    assert ok.sum() > 10 and np.all(diff[ok] <= 0.05 * width[ok])


def test_large_input_point_fits_started_on_a_subsample_match_numpy() -> None:
    # Above 4 x 50k rows the compiled engine starts the recalibration fits on a subsample;
    # the converged estimates must not depend on it.
    rng = np.random.default_rng(5)
    n = 210_000
    sex = rng.integers(0, 2, n).astype(np.int32)
    y = (rng.random(n) < 0.2).astype(np.int8)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) * 1.3 + 1.7 * y - 2.2 + 0.3 * sex)))
    tasks = [TaskArrays("t", y, p, 0.3)]
    groupings = [Grouping("overall", np.zeros(n, np.int32), ("all",), None),
                 Grouping("sex", sex, ("f", "m"), 0)]
    (fast, slow), _ = _evaluators(tasks, groupings)
    for a, b in zip(fast.estimates()[0][0], slow.estimates()[0][0]):
        for metric in ("cal_intercept", "cal_slope"):
            m = EXTENDED_INDEX[metric]
            np.testing.assert_allclose(a[m], b[m], rtol=1e-8, atol=1e-9)
