"""BPSN / BNSP / xAUC against brute-force definitions with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ecgaudit.metrics._bootstrap import Grouping, TaskArrays, bootstrap_intervals
from ecgaudit.metrics._ranking import (
    RANKING_METRICS,
    bnsp_auc,
    bpsn_auc,
    cross_auc,
    ranking_intervals,
    xauc,
)


def _data(n: int = 900, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n)
    y = (rng.random(n) < 0.3).astype(np.int8)
    shift = np.array([0.0, 0.8, -0.5])[g]  # group 1 scored higher, group 2 lower
    p = np.round(1 / (1 + np.exp(-(1.5 * y - 1 + shift + rng.normal(size=n)))), 2)  # ties
    return y, p, g


def _auc_on(y: np.ndarray, p: np.ndarray, keep: np.ndarray) -> float:
    return roc_auc_score(y[keep], p[keep])


def test_bpsn_bnsp_xauc_equal_sklearn_auc_on_the_defining_subsets() -> None:
    y, p, g = _data()
    for k in range(3):
        in_g = g == k
        assert bpsn_auc(y, p, in_g) == pytest.approx(
            _auc_on(y, p, (in_g & (y == 0)) | (~in_g & (y == 1))), abs=1e-12)
        assert bnsp_auc(y, p, in_g) == pytest.approx(
            _auc_on(y, p, (in_g & (y == 1)) | (~in_g & (y == 0))), abs=1e-12)
        for r in range(3):
            if r != k:
                keep = ((g == k) & (y == 1)) | ((g == r) & (y == 0))
                assert xauc(y, p, g == k, g == r) == pytest.approx(
                    _auc_on(y, p, keep), abs=1e-12)


def test_score_shift_shows_in_bpsn_and_bnsp_not_in_subgroup_auc() -> None:
    y, p, g = _data(6000, seed=1)
    up = g == 1
    # Scores shifted up: negatives outrank background positives more -> low BPSN, high BNSP.
    assert bpsn_auc(y, p, up) < _auc_on(y, p, up) < bnsp_auc(y, p, up)
    down = g == 2
    assert bnsp_auc(y, p, down) < _auc_on(y, p, down) < bpsn_auc(y, p, down)


def test_weighted_cross_auc_equals_expanded_rows() -> None:
    rng = np.random.default_rng(2)
    pos, neg = np.round(rng.random(40), 1), np.round(rng.random(60), 1)
    wp, wn = rng.integers(0, 3, (5, 40)), rng.integers(0, 3, (5, 60))
    got = cross_auc(pos, neg, wp, wn)
    for r in range(5):
        pe, ne = np.repeat(pos, wp[r]), np.repeat(neg, wn[r])
        yy = np.r_[np.ones(pe.size), np.zeros(ne.size)]
        assert got[r] == pytest.approx(roc_auc_score(yy, np.r_[pe, ne]), abs=1e-12)


def test_empty_sides_are_nan() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.4])
    assert np.isnan(bnsp_auc(y, p, np.array([True, True, False, False])))
    assert np.isnan(xauc(y, p, np.array([True, False, False, False]), np.ones(4, bool)))


def test_ranking_intervals_cover_point_estimate_and_are_seeded() -> None:
    y, p, g = _data(1200, seed=3)
    grouping = Grouping("site", g.astype(np.int32), ("a", "b", "c"), 0)
    overall = Grouping("overall", np.zeros(g.size, np.int32), ("all",), None)
    res = ranking_intervals("t", y, p, [overall, grouping], n_boot=200, seed=4)
    again = ranking_intervals("t", y, p, [overall, grouping], n_boot=200, seed=4)
    assert res.equals(again)
    assert set(res["metric"]) == set(RANKING_METRICS)
    assert len(res) == 3 * 2 + 2 * 2  # BPSN/BNSP for 3 groups, xAUC both ways for 2
    assert (res["ci_low"] <= res["estimate"]).all() and (res["estimate"] <= res["ci_high"]).all()
    row = res[(res.group == "b") & (res.metric == "bpsn_auc")].iloc[0]
    assert row["estimate"] == pytest.approx(bpsn_auc(y, p, g == 1), abs=1e-12)
    assert 0.0 < row["ci_high"] - row["ci_low"] < 0.2


def test_ranking_intervals_are_the_bootstrap_ranking_table_of_the_same_replicates() -> None:
    y, p, g = _data(900, seed=5)
    grouping = Grouping("site", g.astype(np.int32), ("a", "b", "c"), 1)
    overall = Grouping("overall", np.zeros(g.size, np.int32), ("all",), None)
    alone = ranking_intervals("t", y, p, [grouping], n_boot=60, seed=2,
                              strata_groupings=[overall, grouping])
    tasks = [TaskArrays("t", y.astype(np.int8), p, 0.5)]
    full = bootstrap_intervals(tasks, [overall, grouping], n_boot=60, seed=2).ranking
    assert len(alone) == len(full) == 3 * 2 + 2 * 2
    for col in ("estimate", "ci_low", "ci_high"):
        np.testing.assert_allclose(alone[col], full[col], atol=1e-12)
