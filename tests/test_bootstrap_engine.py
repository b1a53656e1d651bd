"""Bootstrap engine: resampling design, determinism, degenerate replicates, interval maths."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, skew

from ecgaudit.errors import InputError
from ecgaudit.metrics._bootci import (
    bca_limits,
    bootstrap_p_value,
    jackknife_acceleration,
    percentile_limits,
)
from ecgaudit.metrics._bootstrap import (
    BOOT_DISPARITY_COLUMNS,
    BOOT_METRIC_COLUMNS,
    Grouping,
    TaskArrays,
    bootstrap_intervals,
    replicate_weights,
)
from ecgaudit.schema import METRICS


def _simple(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    sex = rng.integers(0, 2, n).astype(np.int32)
    age = rng.integers(0, 3, n).astype(np.int32)
    y = (rng.random(n) < 0.3).astype(np.int8)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 1)))
    groupings = [
        Grouping("overall", np.zeros(n, np.int32), ("all",), None),
        Grouping("sex", sex, ("female", "male"), 0),
        Grouping("age", age, ("<40", "40-59", "60+"), 1),
    ]
    return [TaskArrays("t", y, p, 0.5)], groupings


def test_stratified_draws_keep_every_stratum_size() -> None:
    _tasks, groupings = _simple()
    w = replicate_weights(groupings, 600, n_boot=50, seed=1)
    strata = groupings[1].codes * 3 + groupings[2].codes
    for s in np.unique(strata):
        assert np.all(w[:, strata == s].sum(axis=1) == np.sum(strata == s))
    # Rows are drawn uniformly: mean weight 1, variance (1 - 1/m) close to 1 for large m.
    assert abs(w.mean() - 1.0) < 1e-12
    assert 0.9 < w.var() < 1.1


def test_clustered_draws_resample_whole_patients_within_strata() -> None:
    _tasks, groupings = _simple()
    patient = np.repeat(np.arange(200), 3)  # 3 ECGs per patient
    # Give every patient one stratum so that "patients per stratum" is well defined.
    for g in groupings[1:]:
        g.codes[:] = np.repeat(g.codes[::3], 3)
    w = replicate_weights(groupings, 600, n_boot=30, seed=2, patient=patient)
    per_patient = w.reshape(30, 200, 3)
    assert np.all(per_patient == per_patient[:, :, :1])  # all ECGs of a patient share a weight
    strata = (groupings[1].codes * 3 + groupings[2].codes)[::3]
    for s in np.unique(strata):
        assert np.all(per_patient[:, strata == s, 0].sum(axis=1) == np.sum(strata == s))


def test_replicates_do_not_depend_on_batching_and_seed_matters() -> None:
    _, groupings = _simple()
    full = replicate_weights(groupings, 600, n_boot=12, seed=5)
    again = replicate_weights(groupings, 600, n_boot=12, seed=5)
    other = replicate_weights(groupings, 600, n_boot=12, seed=6)
    assert np.array_equal(full, again)
    assert not np.array_equal(full, other)
    from ecgaudit.metrics._bootsample import Sampler
    from ecgaudit.metrics._cells import finest_strata

    strata = finest_strata([g.codes for g in groupings], 600).codes
    tail = Sampler(strata, None, 5).draw(range(7, 12))
    assert np.array_equal(tail, full[7:12])


def test_same_seed_same_intervals_and_table_shape() -> None:
    tasks, groupings = _simple()
    a = bootstrap_intervals(tasks, groupings, n_boot=60, seed=3)
    b = bootstrap_intervals(tasks, groupings, n_boot=60, seed=3)
    c = bootstrap_intervals(tasks, groupings, n_boot=60, seed=4)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.disparities, b.disparities)
    assert not a.metrics["ci_low"].equals(c.metrics["ci_low"])
    assert tuple(a.metrics.columns) == BOOT_METRIC_COLUMNS
    assert tuple(a.disparities.columns) == BOOT_DISPARITY_COLUMNS
    assert len(a.metrics) == 6 * len(METRICS)  # overall + 2 sexes + 3 age bands
    assert len(a.disparities) == 3 * len(METRICS)  # 1 sex + 2 age bands vs reference
    assert set(a.metrics["ci_method"]) == {"bootstrap-percentile"}
    ok = a.metrics[a.metrics["reason"] == ""]
    assert (ok["ci_low"] <= ok["ci_high"]).all()


def test_disparity_limits_are_quantiles_of_paired_row_level_differences() -> None:
    tasks, groupings = _simple()
    res = bootstrap_intervals(tasks, groupings, n_boot=80, seed=9)
    w = replicate_weights(groupings, 600, n_boot=80, seed=9)
    y, flag = tasks[0].y, tasks[0].p >= 0.5
    sex = groupings[1].codes
    # Independent row-level computation of the flag-rate and sensitivity per replicate.
    fr = [(w[:, sex == g] * flag[sex == g]).sum(1) / w[:, sex == g].sum(1) for g in (0, 1)]
    pos = [(w[:, (sex == g) & (y == 1)]).sum(1) for g in (0, 1)]
    tp = [(w[:, (sex == g) & (y == 1) & flag]).sum(1) for g in (0, 1)]
    sens = [tp[g] / pos[g] for g in (0, 1)]
    row = res.disparities.set_index(["attribute", "group", "metric"])
    for metric, vals in (("flag_rate", fr), ("sensitivity", sens)):
        d = vals[1] - vals[0]
        r = vals[1] / vals[0]
        got = row.loc[("sex", "male", metric)]
        assert got["difference_ci_low"] == pytest.approx(np.quantile(d, 0.025), abs=1e-12)
        assert got["difference_ci_high"] == pytest.approx(np.quantile(d, 0.975), abs=1e-12)
        assert got["ratio_ci_low"] == pytest.approx(np.quantile(r, 0.025), abs=1e-12)
        assert got["ratio_ci_high"] == pytest.approx(np.quantile(r, 0.975), abs=1e-12)
        m = res.metrics.set_index(["attribute", "group", "metric"]).loc[("sex", "male", metric)]
        assert m["ci_low"] == pytest.approx(np.quantile(vals[1], 0.025), abs=1e-12)


def test_degenerate_share_matches_closed_form_and_withholds_ci() -> None:
    n_small, k_pos = 30, 2
    rng = np.random.default_rng(0)
    n = 400
    codes = np.zeros(n, np.int32)
    codes[:n_small] = 1
    y = (rng.random(n) < 0.3).astype(np.int8)
    y[:n_small] = 0
    y[:k_pos] = 1
    p = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.15, n), 0.01, 0.99)
    groupings = [Grouping("site", codes, ("big", "small"), 0)]
    res = bootstrap_intervals([TaskArrays("t", y, p, 0.5)], groupings, n_boot=2000, seed=1)
    m = res.metrics.set_index(["group", "metric"])
    # P(no positive drawn) = (1 - k/m)^m for m draws from a group with k positives.
    expected = (1 - k_pos / n_small) ** n_small
    se = np.sqrt(expected * (1 - expected) / 2000)
    share = m.loc[("small", "auroc"), "degenerate_share"]
    assert abs(share - expected) < 4 * se
    assert m.loc[("small", "sensitivity"), "degenerate_share"] == share
    assert np.isnan(m.loc[("small", "auroc"), "ci_low"])
    assert "degenerate" in m.loc[("small", "auroc"), "reason"]
    assert m.loc[("small", "specificity"), "reason"] == ""  # negatives always drawn
    assert m.loc[("big", "auroc"), "degenerate_share"] == 0.0
    d = res.disparities.set_index(["group", "metric"]).loc[("small", "auroc")]
    assert np.isnan(d["difference_ci_low"]) and np.isnan(d["p_value"])
    assert "reference group" in d["reason"]
    # A generous limit reports the interval from the non-degenerate replicates.
    loose = bootstrap_intervals([TaskArrays("t", y, p, 0.5)], groupings, n_boot=2000, seed=1,
                                max_degenerate=0.5)
    lm = loose.metrics.set_index(["group", "metric"]).loc[("small", "auroc")]
    assert np.isfinite(lm["ci_low"]) and lm["reason"] == ""


def test_percentile_limits_equal_numpy_quantiles_ignoring_nan() -> None:
    rng = np.random.default_rng(3)
    reps = rng.normal(size=(500, 4, 3))
    reps[rng.random(reps.shape) < 0.1] = np.nan
    lo, hi = percentile_limits(reps, 0.9)
    assert np.allclose(lo, np.nanquantile(reps, 0.05, axis=0), rtol=0, atol=1e-14)
    assert np.allclose(hi, np.nanquantile(reps, 0.95, axis=0), rtol=0, atol=1e-14)


def test_jackknife_acceleration_of_the_mean_is_skewness_over_6_sqrt_n() -> None:
    x = np.random.default_rng(4).exponential(size=200)
    loo = (x.sum() - x) / (x.size - 1)
    a = jackknife_acceleration(loo[:, None])[0]
    # Closed form for the mean: a = sum d^3 / (6 (sum d^2)^1.5) = skew_biased / (6 sqrt(n)).
    assert a == pytest.approx(skew(x) / (6 * np.sqrt(x.size)), rel=1e-10)


def test_bca_formula_against_hand_computation() -> None:
    rng = np.random.default_rng(5)
    reps = rng.gamma(4.0, size=(4000, 1))
    est, accel = np.array([3.7]), np.array([0.05])
    lo, hi = bca_limits(reps, est, accel, 0.95)
    z0 = norm.ppf(np.mean(reps[:, 0] < 3.7))
    q = [norm.cdf(z0 + (z0 + z) / (1 - 0.05 * (z0 + z))) for z in norm.ppf([0.025, 0.975])]
    assert lo[0] == pytest.approx(np.quantile(reps[:, 0], q[0]), abs=1e-12)
    assert hi[0] == pytest.approx(np.quantile(reps[:, 0], q[1]), abs=1e-12)
    # No bias, no acceleration: BCa reduces to the percentile interval.
    sym = np.concatenate([reps - 4.0, 4.0 - reps])
    lo0, hi0 = bca_limits(sym, np.array([0.0]), np.array([0.0]), 0.95)
    plo, phi = percentile_limits(sym, 0.95)
    assert lo0[0] == pytest.approx(plo[0], abs=1e-12) and hi0[0] == pytest.approx(phi[0])


def test_bca_end_to_end_and_p_values() -> None:
    tasks, groupings = _simple()
    res = bootstrap_intervals(tasks, groupings, n_boot=200, seed=3, method="bca")
    assert set(res.metrics["ci_method"]) == {"bootstrap-bca"}
    ok = res.metrics[res.metrics["reason"] == ""]
    assert len(ok) > 0.9 * len(res.metrics)
    assert (ok["ci_low"] <= ok["ci_high"]).all()
    p = bootstrap_p_value(np.array([[1.0], [2.0], [-1.0], [3.0]]))
    assert p[0] == pytest.approx(2 * (1 + 1) / 5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"method": "basic"}, "percentile"), ({"n_boot": 0}, ">= 1"),
     ({"patient": np.arange(3)}, "patient has 3 rows")],
)
def test_bad_arguments_raise_input_error(kwargs: dict, match: str) -> None:
    tasks, groupings = _simple()
    args = {"n_boot": 10, "seed": 0, **kwargs}
    with pytest.raises(InputError, match=match):
        bootstrap_intervals(tasks, groupings, **args)
