"""Curves along a numeric axis: kernel-weighted metrics against direct formulas, bands, rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import ecgaudit
from ecgaudit.errors import ConfigError
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._kernelcurves import (
    HAVE_NUMBA,
    CurveInputs,
    bandwidth_rule,
    curve_metrics,
    curve_sums,
    kernel_weights,
)

ENGINES = [False, True] if HAVE_NUMBA else [False]


def _weighted_mann_whitney(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    """Direct O(n^2) weighted Mann-Whitney AUROC (independent of the sorted algorithm)."""
    pos, neg = y == 1, y == 0
    wp, wn = w[pos], w[neg]
    sp, sn = p[pos], p[neg]
    gt = (sp[:, None] > sn[None, :]).astype(float) + 0.5 * (sp[:, None] == sn[None, :])
    return float((wp[:, None] * wn[None, :] * gt).sum() / (wp.sum() * wn.sum()))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 400
    y = (rng.random(n) < 0.3).astype(np.int8)
    p = np.round(np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1), 2)  # many ties
    age = rng.uniform(20, 90, n)
    age[:15] = np.nan
    return y, p, age


@pytest.mark.parametrize("compiled", ENGINES)
def test_kernel_metrics_equal_direct_weighted_formulas(data, compiled) -> None:
    y, p, age = data
    grid = np.array([30.0, 55.0, 80.0])
    K = kernel_weights(age, grid, 6.0)
    m = curve_metrics(curve_sums(CurveInputs(y, p, 0.5, K), compiled=compiled)[0])
    for j in range(grid.size):
        w = K[j]
        assert m["auroc"][j] == pytest.approx(_weighted_mann_whitney(y, p, w), rel=1e-12)
        flag = p >= 0.5
        assert m["sensitivity"][j] == pytest.approx((w * (y == 1) * flag).sum()
                                                    / (w * (y == 1)).sum(), rel=1e-12)
        assert m["specificity"][j] == pytest.approx((w * (y == 0) * ~flag).sum()
                                                    / (w * (y == 0)).sum(), rel=1e-12)
        assert m["oe_ratio"][j] == pytest.approx((w * y).sum() / (w * p).sum(), rel=1e-12)
        assert m["n_eff"][j] == pytest.approx(w.sum() ** 2 / (w**2).sum(), rel=1e-12)
        wp = w[y == 1]
        assert m["n_eff_pos"][j] == pytest.approx(wp.sum() ** 2 / (wp**2).sum(), rel=1e-12)


def test_unit_weights_give_the_plain_auroc(data) -> None:
    from sklearn.metrics import roc_auc_score

    y, p, _ = data
    K = np.ones((1, y.size))
    m = curve_metrics(curve_sums(CurveInputs(y, p, 0.5, K))[0])
    assert m["auroc"][0] == pytest.approx(roc_auc_score(y, p), rel=1e-12)


@pytest.mark.parametrize("compiled", ENGINES)
def test_replicate_counts_equal_expanded_rows(data, compiled) -> None:
    y, p, age = data
    K = kernel_weights(age, np.array([40.0, 70.0]), 8.0)
    counts = Sampler(np.zeros(y.size, dtype=np.int64), None, seed=3).draw(range(4))
    sums = curve_sums(CurveInputs(y, p, 0.5, K), counts, compiled=compiled)
    for b in range(4):
        rows = np.repeat(np.arange(y.size), counts[b])
        expanded = curve_sums(CurveInputs(y[rows], p[rows], 0.5, K[:, rows]),
                              compiled=compiled)[0]
        # The metric sums agree; the squared-weight sums (effective sizes) are taken from
        # the point estimate only.
        np.testing.assert_allclose(sums[b, :, :7], expanded[:, :7], rtol=1e-10)
        m_rep, m_exp = curve_metrics(sums[b]), curve_metrics(expanded)
        for k in ("auroc", "sensitivity", "specificity", "oe_ratio"):
            np.testing.assert_allclose(m_rep[k], m_exp[k], rtol=1e-10)


def test_bandwidth_rules_closed_form() -> None:
    x = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0, np.nan])
    k = x[np.isfinite(x)]
    sd = np.std(k, ddof=1)
    iqr = np.subtract(*np.percentile(k, [75, 25]))
    assert bandwidth_rule(x, "silverman") == pytest.approx(
        0.9 * min(sd, iqr / 1.34) * 6 ** -0.2)
    assert bandwidth_rule(x, "scott") == pytest.approx(1.06 * sd * 6 ** -0.2)
    assert bandwidth_rule(x, 2.5) == 2.5
    assert math.isnan(bandwidth_rule(np.array([3.0, 3.0]), "silverman"))


def _age_cohort(n: int = 3000, seed: int = 1) -> pd.DataFrame:
    """AUROC planted to fall with age: separation 3 at 20 years, 0.5 at 90."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 90, n)
    sex = rng.choice(["female", "male"], n)
    y = (rng.random(n) < 0.3).astype(int)
    d = 3.0 - 2.5 * (age - 20) / 70
    z = -1 + d * (y - 0.5) + rng.normal(size=n)
    sex[:6] = "other"  # a small group: withheld
    return pd.DataFrame({"id": np.arange(n), "y": y, "p": 1 / (1 + np.exp(-z)),
                         "sex": sex, "age": np.round(age)})


def _config(**extra) -> dict:
    return {"tasks": [{"name": "t", "label": "y", "score": "p"}],
            "attributes": {"sex": {}, "age": {"kind": "age"}}, "intersections": "none",
            "bootstrap": 60, "seed": 5,
            "continuous_axes": {"age": {"by": ["sex"], "grid": [15, 30, 55, 80, 88]}},
            **extra}


@pytest.fixture(scope="module")
def result():
    return ecgaudit.audit(_age_cohort(), _config())


def test_curves_follow_the_planted_age_effect(result) -> None:
    rows = pd.DataFrame(result.extras["curves_by_value"])
    auc = rows[(rows.by == "overall") & (rows.metric == "auroc")].set_index("age")
    assert auc.loc[30, "estimate"] > auc.loc[80, "estimate"] + 0.15
    assert auc.loc[30, "ci_low"] > auc.loc[80, "ci_high"]  # bands separate
    ok = rows[rows.status == "ok"]
    assert (ok.ci_high > ok.ci_low).all()
    assert (ok.ci_low <= ok.estimate).all() and (ok.estimate <= ok.ci_high).all()
    assert set(rows.columns) >= {"task", "axis", "by", "group", "age", "metric", "estimate",
                                 "ci_low", "ci_high", "ci_method", "n_eff", "status"}
    assert set(rows.group) == {"all", "female", "male"}


def test_small_points_and_groups_are_withheld_with_reasons(result) -> None:
    rows = pd.DataFrame(result.extras["curves_by_value"])
    edge = rows[rows.age == 15]  # outside the data: no extrapolation
    assert (edge.status == "withheld").all()
    assert edge.reason.str.contains("outside the group's observed range").all()
    assert edge.estimate.isna().all() and edge.n_eff.isna().all()
    ok = rows[rows.status == "ok"]
    assert (ok.n_eff >= 30).all()  # no effective size in 1..10 is ever shown
    meta = result.extras["curves_by_value_axes"]["age"]
    assert meta["withheld"] == [{"by": "sex", "group": "other",
                                 "reason": "fewer than 11 patients"}]
    assert meta["bandwidth_rule"] == "silverman" and meta["bandwidth"] > 0


def test_points_with_a_small_effective_size_are_withheld() -> None:
    cfg = _config(bootstrap=0)
    cfg["continuous_axes"]["age"]["min_effective_n"] = 250
    rows = pd.DataFrame(ecgaudit.audit(_age_cohort(), cfg).extras["curves_by_value"])
    small = rows[rows.by == "sex"]
    inside = small[small.age.between(20, 90)]
    assert (inside.status == "withheld").any()
    assert inside[inside.status == "withheld"].reason.str.contains(
        "effective sample size below 250").all()
    ok = rows[rows.status == "ok"]
    assert (ok.n_eff >= 250).all() and ok.ci_low.isna().all()
    assert (ok.reason == "no band: bootstrap is 0").all()


def test_curves_are_reproducible_and_saved(result, tmp_path) -> None:
    again = ecgaudit.audit(_age_cohort(), _config())
    assert again.to_json() == result.to_json()
    paths = result.save(tmp_path)
    table = pd.read_csv(paths["curves_by_value"])
    assert len(table) == len(result.extras["curves_by_value"])
    assert "age" in table.columns


def test_numpy_engine_gives_the_same_curves(result) -> None:
    other = ecgaudit.audit(_age_cohort(), _config(engine="numpy"))
    a = pd.DataFrame(result.extras["curves_by_value"])
    b = pd.DataFrame(other.extras["curves_by_value"])
    np.testing.assert_allclose(a.estimate.astype(float), b.estimate.astype(float),
                               rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(a.ci_low.astype(float), b.ci_low.astype(float), rtol=1e-9,
                               equal_nan=True)


def test_unknown_by_attribute_is_a_config_error() -> None:
    cfg = _config()
    cfg["continuous_axes"]["age"]["by"] = ["sexx"]
    with pytest.raises(ConfigError, match=r"continuous_axes\.age\.by.*sexx.*Did you mean"):
        ecgaudit.audit(_age_cohort(100), cfg)
    cfg = _config()
    cfg["continuous_axes"] = {"group": {"column": "age"}}
    with pytest.raises(ConfigError, match=r"'group' names a column of the curve rows"):
        ecgaudit.audit(_age_cohort(100), cfg)


def test_missing_or_non_numeric_axis_column_is_a_clear_input_error(tmp_path) -> None:
    from typer.testing import CliRunner

    from ecgaudit.cli import app
    from ecgaudit.errors import ValidationError

    df = _age_cohort(200)
    cfg = _config(bootstrap=0)
    cfg["continuous_axes"]["bmi"] = {}
    with pytest.raises(ValidationError, match=r"column 'bmi': column not found"):
        ecgaudit.audit(df, cfg)
    df["bmi"] = "25.0"
    df.loc[[3, 7], "bmi"] = "heavy"
    with pytest.raises(ValidationError, match=r"column 'bmi', rows 4, 8: continuous axis 'bmi'"
                                              r" needs numbers; 2 values"):
        ecgaudit.audit(df, cfg)
    df.to_csv(tmp_path / "p.csv", index=False)
    (tmp_path / "c.yaml").write_text(__import__("yaml").safe_dump(cfg))
    out = CliRunner().invoke(app, ["audit", str(tmp_path / "p.csv"), "--config",
                                   str(tmp_path / "c.yaml"), "--out", str(tmp_path / "o")])
    assert out.exit_code == 2 and "needs numbers" in out.output
    assert not (tmp_path / "o" / "results.json").exists()


def test_kernel_is_gaussian_truncated_at_six_bandwidths() -> None:
    a = np.array([0.0, 5.9, 6.1, -6.1, np.nan])
    w = kernel_weights(a, np.array([0.0]), 1.0)[0]
    np.testing.assert_allclose(w[:2], np.exp(-0.5 * a[:2] ** 2))
    assert w[2] == w[3] == w[4] == 0.0


@pytest.mark.slow
def test_pointwise_bands_cover_the_smoothed_truth() -> None:
    """Percentile bands from the audit's sampler cover the kernel-smoothed AUROC at age x.

    The target of the estimator at a fixed bandwidth is the kernel-weighted AUROC of the
    population, approximated here by one very large sample.
    """
    from ecgaudit.pipeline._curves import _band

    grid, h = np.array([35.0, 60.0, 80.0]), 5.0

    def sample(n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        age = rng.uniform(20, 90, n)
        y = (rng.random(n) < 0.3).astype(np.int8)
        d = 3.0 - 2.5 * (age - 20) / 70
        return y, d * y + rng.normal(size=n), age

    y, p, age = sample(400_000, np.random.default_rng(0))
    truth = curve_metrics(curve_sums(CurveInputs(y, p, 0.0, kernel_weights(age, grid, h)))[0])
    rng = np.random.default_rng(1)
    reps, hits = 150, np.zeros(grid.size)
    for r in range(reps):
        y, p, age = sample(1500, rng)
        inputs = CurveInputs(y, p, 0.0, kernel_weights(age, grid, h))
        counts = Sampler(np.zeros(y.size, dtype=np.int64), None, seed=r).draw(range(200))
        boot = curve_metrics(curve_sums(inputs, counts))["auroc"]
        for j in range(grid.size):
            lo, hi, _ = _band(boot[:, j], 0.95, 0.05)
            hits[j] += lo <= truth["auroc"][j] <= hi
    coverage = hits / reps
    assert np.all((coverage >= 0.87) & (coverage <= 0.99)), coverage
