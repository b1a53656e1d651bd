"""Paired-bootstrap replicate kernel: same draws as the counter-based stream, deterministic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import norm

from ecgaudit.config import parse_config
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.metrics import _kernels
from ecgaudit.metrics._hashrng import replicate_keys, uniforms
from ecgaudit.metrics._paired import _unit_sums, paired_group, paired_group_tasks, paired_rng
from ecgaudit.metrics._pairkernel import replicate_sums
from ecgaudit.pipeline import compare_predictions


def _tiny(seed: int = 3, n: int = 40, k: int = 17) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    pb, pc = rng.random(n), rng.random(n)
    units = np.unique(rng.integers(0, k, n), return_inverse=True)[1]
    return y, pb, pc, units


@pytest.mark.parametrize("compiled", [True, False])
def test_replicate_sums_equal_a_direct_recomputation_of_the_same_draws(compiled: bool) -> None:
    y, pb, pc, units = _tiny()
    sums = _unit_sums(y, pb, pc, 0.5, 0.4, units)
    k = sums.shape[0]
    keys = replicate_keys(11, range(25))
    got = replicate_sums(keys, sums, compiled=compiled)
    for r, key in enumerate(keys):
        drawn = np.floor(uniforms(key, k) * k).astype(int)      # slot j draws unit drawn[j]
        rows = np.concatenate([np.flatnonzero(units == u) for u in drawn])
        yf, fb, fc = y[rows].astype(float), pb[rows] >= 0.5, pc[rows] >= 0.4
        ref = [rows.size, yf.sum(), (fb * yf).sum(), (fb * (1 - yf)).sum(), fb.sum(),
               (fc * yf).sum(), (fc * (1 - yf)).sum(), fc.sum(),
               ((pb[rows] - yf) ** 2).sum(), ((pc[rows] - yf) ** 2).sum(),
               pb[rows].sum(), pc[rows].sum()]
        np.testing.assert_array_equal(got[r, :8], ref[:8])      # counts: exact
        np.testing.assert_allclose(got[r, 8:], ref[8:], rtol=1e-12)


@pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="needs numba")
def test_replicate_sums_do_not_depend_on_the_thread_count() -> None:
    import numba

    rng = np.random.default_rng(0)
    sums = rng.random((5000, 12))
    keys = replicate_keys(5, range(64))
    before = numba.get_num_threads()
    try:
        many = replicate_sums(keys, sums)
        numba.set_num_threads(1)
        one = replicate_sums(keys, sums)
    finally:
        numba.set_num_threads(before)
    assert many.tobytes() == one.tobytes()
    np.testing.assert_allclose(many, replicate_sums(keys, sums, compiled=False), rtol=1e-12)


def test_paired_group_is_deterministic_for_a_seed() -> None:
    y, pb, pc, units = _tiny(n=400, k=150)

    def run(seed: int) -> dict[str, dict[str, object]]:
        return paired_group(y, pb, pc, 0.5, 0.4, units, 200, 0.95, paired_rng(seed), 0.05)

    a, b, c = run(1), run(1), run(2)
    assert a == b
    assert a["sensitivity"]["change"] == c["sensitivity"]["change"]          # same point
    assert a["sensitivity"]["change_ci_low"] != c["sensitivity"]["change_ci_low"]


def test_compare_output_is_byte_identical_for_a_seed() -> None:
    df = make_synthetic_cohort(3000, seed=4, ecgs_per_patient=1.5).frame
    cand = df.copy()
    cand["p_hf"] = np.clip(df["p_hf"] + np.random.default_rng(1).normal(0, 0.05, len(df)), 0, 1)
    cfg = parse_config({"tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
                        "attributes": {"race": {}, "sex": {}}, "id_column": "ecg_id",
                        "patient_column": "patient_id",
                        "threshold": {"rule": "fixed", "value": 0.3}})

    def table(seed: int) -> pd.DataFrame:
        return compare_predictions(df, cand, cfg, n_boot=100, seed=seed).table

    one, two, other = table(0), table(0), table(1)
    assert one.to_csv(index=False) == two.to_csv(index=False)
    assert one["change_ci_low"].notna().any()
    boot = one["ci_method"].str.contains("bootstrap", na=False)
    assert not one.loc[boot, "change_ci_low"].equals(other.loc[boot, "change_ci_low"])
    pd.testing.assert_series_equal(one["change"], other["change"])


def test_compare_reports_progress_per_group_without_naming_groups() -> None:
    df = make_synthetic_cohort(1500, seed=6).frame
    cand = df.assign(p_hf=np.clip(df["p_hf"] * 0.9, 0, 1))
    cfg = parse_config({"tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
                        "attributes": {"race": {}, "sex": {}}, "id_column": "ecg_id",
                        "intersections": "none",
                        "threshold": {"rule": "fixed", "value": 0.3}})
    calls: list[tuple[str, int, int]] = []
    quiet = compare_predictions(df, cand, cfg, n_boot=50, seed=2).table
    loud = compare_predictions(df, cand, cfg, n_boot=50, seed=2,
                               progress=lambda *a: calls.append(a)).table
    pd.testing.assert_frame_equal(quiet, loud)          # reporting changes no number
    n_groups = len(quiet[["attribute", "group"]].drop_duplicates())
    assert n_groups >= 6
    assert calls[-1] == ("done", n_groups, n_groups)
    steps = calls[:-1]
    assert [i for _, i, _ in steps] == list(range(1, n_groups + 1))
    assert all(t == n_groups and "B=50" in s for s, _, t in steps)
    names = set(quiet["group"].dropna().astype(str)) - {"all"}
    assert not any(name in s for s, _, _ in steps for name in names)


@pytest.mark.slow
def test_shared_draw_clustered_intervals_cover_the_planted_changes() -> None:
    """Two tasks, two ECGs per patient (shared noise); true sensitivity changes in closed form."""
    rng = np.random.default_rng(77)
    n_pat, d_b, d_c = 400, 1.4, 2.0
    truths = (norm.cdf(d_c / 2) - norm.cdf(d_b / 2), norm.cdf(d_b / 2) - norm.cdf(d_c / 2))
    units = np.repeat(np.arange(n_pat), 2)
    hits = np.zeros(2)
    sims = 100
    seeds = paired_rng(5)
    for _ in range(sims):
        tasks = []
        for t in range(2):
            y = np.repeat((rng.random(n_pat) < 0.4).astype(int), 2)
            e = [np.repeat(rng.normal(0, math.sqrt(0.8), n_pat), 2)
                 + rng.normal(0, math.sqrt(0.2), 2 * n_pat) for _ in range(2)]
            db, dc = (d_b, d_c) if t == 0 else (d_c, d_b)
            tasks.append((y, expit(db / 2 * (2 * y - 1) + e[0]),
                          expit(dc / 2 * (2 * y - 1) + e[1]), 0.5, 0.5))
        res = paired_group_tasks(tasks, units, 300, 0.95, seeds, 0.05)
        for t in range(2):
            r = res[t]["sensitivity"]
            hits[t] += r["change_ci_low"] <= truths[t] <= r["change_ci_high"]
    assert np.all(hits / sims >= 0.88), hits
    assert np.all(hits / sims < 1.0), hits          # not vacuously wide


def test_collapsed_replicates_give_no_zero_width_interval() -> None:
    """Two models that flag the same ECGs: every replicate's rate change is 0 -> no interval."""
    y, pb, _, units = _tiny(n=400, k=150)
    pc = pb + 0.01  # different Brier, the same flags at thresholds 0.5 / 0.51
    res = paired_group(y, pb, pc, 0.5, 0.51, units, 200, 0.95, paired_rng(4), 0.05)
    for m in ("sensitivity", "specificity", "flag_rate"):
        assert res[m]["change"] == 0.0
        assert "change_ci_low" not in res[m] and "change_ci_high" not in res[m], res[m]
        assert "zero width" in res[m]["reason"]
    brier = res["brier"]  # the scores differ: a real interval, with a positive width
    assert brier["change_ci_high"] > brier["change_ci_low"]
