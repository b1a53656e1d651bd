"""Baseline comparison: unpaired and paired change intervals, and `ecgaudit compare`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.special import expit
from scipy.stats import norm
from sklearn.metrics import brier_score_loss, precision_score, recall_score, roc_auc_score
from typer.testing import CliRunner

from ecgaudit import AuditResult, audit
from ecgaudit.cli import app
from ecgaudit.config import parse_config
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.errors import InputError
from ecgaudit.metrics._paired import _metrics_from_sums, _unit_sums, paired_group
from ecgaudit.pipeline import compare_predictions, compare_results, config_from_result
from ecgaudit.policy import evaluate, parse_policy
from tests.test_policy_evaluate import make_result, metric_row

CONFIG = {
    "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
    "attributes": {"race": {"reference": "White"}, "sex": {}},
    "intersections": "pairs",
    "id_column": "ecg_id",
    "patient_column": "patient_id",
    "threshold": {"rule": "fixed", "value": 0.3},
}
NO_REGRESSION = """
name: no-regression
rules:
  - {metric: auroc, max_worsening: 0.02, judge: ci, attributes: [race], exclude_groups: [Unknown]}
"""


def test_unpaired_change_interval_is_the_closed_form() -> None:
    base = make_result([metric_row("White", 0.80, 0.76, 0.84),
                        metric_row("Black", 0.70, 0.60, 0.80),
                        metric_row("Asian", float("nan"), float("nan"), float("nan"),
                                   status="suppressed")])
    cand = make_result([metric_row("White", 0.85, 0.82, 0.88),
                        metric_row("Black", 0.72, 0.66, 0.78),
                        metric_row("Asian", 0.9, 0.8, 1.0)])
    t = compare_results(base, cand).table.set_index("group")
    z = norm.ppf(0.975)
    se = math.hypot(0.08 / (2 * z), 0.06 / (2 * z))
    assert t.loc["White", "change"] == pytest.approx(0.05)
    assert t.loc["White", "change_ci_low"] == pytest.approx(0.05 - z * se)
    assert t.loc["White", "change_ci_high"] == pytest.approx(0.05 + z * se)
    assert t.loc["Black", "change_ci_high"] - t.loc["Black", "change_ci_low"] == pytest.approx(
        2 * z * math.hypot(0.2 / (2 * z), 0.12 / (2 * z)))
    assert t.loc["Asian", "status"] == "suppressed"
    assert math.isnan(t.loc["Asian", "change"])
    assert set(t["ci_method"]) == {"unpaired normal approximation from both results' CIs"}


def test_unit_sums_give_row_level_metrics_on_the_same_draw() -> None:
    rng = np.random.default_rng(0)
    n = 300
    y = (rng.random(n) < 0.3).astype(int)
    pb, pc = rng.random(n), np.clip(rng.random(n) * 0.5 + 0.3 * y, 0, 1)
    units = rng.integers(0, 120, size=n)             # 120 patients, repeated ECGs
    _, units = np.unique(units, return_inverse=True)
    sums = _unit_sums(y, pb, pc, 0.5, 0.45, units)
    w_units = rng.multinomial(units.max() + 1, np.full(units.max() + 1, 1 / (units.max() + 1)))
    got = _metrics_from_sums(w_units @ sums)
    w = w_units[units].astype(float)                  # the same draw, expanded to rows
    for p, t, side in ((pb, 0.5, 0), (pc, 0.45, 1)):
        flag = (p >= t).astype(int)
        ref = {
            "sensitivity": recall_score(y, flag, sample_weight=w),
            "specificity": recall_score(1 - y, 1 - flag, sample_weight=w),
            "ppv": precision_score(y, flag, sample_weight=w),
            "npv": precision_score(1 - y, 1 - flag, sample_weight=w),
            "fnr": 1 - recall_score(y, flag, sample_weight=w),
            "fpr": 1 - recall_score(1 - y, 1 - flag, sample_weight=w),
            "flag_rate": np.average(flag, weights=w),
            "brier": brier_score_loss(y, p, sample_weight=w),
            "oe_ratio": np.sum(w * y) / np.sum(w * p),
        }
        for metric, value in ref.items():
            assert got[metric][side] == pytest.approx(value, abs=1e-12), metric


def _two_models(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    base = make_synthetic_cohort(n, seed=seed).frame
    cand = base.copy()
    rng = np.random.default_rng(seed + 1)
    cand["p_hf"] = expit(np.log(base["p_hf"] / (1 - base["p_hf"]))
                         + rng.normal(0, 0.35, len(base)))
    return base, cand


def test_paired_comparison_matches_sklearn_and_is_narrower_than_unpaired() -> None:
    base, cand = _two_models(3000, seed=2)
    cfg = parse_config(CONFIG)
    paired = compare_predictions(base, cand, cfg, n_boot=300, seed=1).table
    unpaired = compare_results(audit(base, cfg), audit(cand, cfg)).table
    key = ["attribute", "group", "metric"]
    both = paired.merge(unpaired, on=["task", *key], suffixes=("_p", "_u"))
    ok = both.loc[(both.status_p == "ok") & (both.status_u == "ok")]
    assert len(ok) > 50
    white = (base["race"] == "White").to_numpy()
    row = ok.set_index(key).loc[("race", "White", "auroc")]
    assert row.baseline_p == pytest.approx(roc_auc_score(base.y_hf[white], base.p_hf[white]))
    assert row.candidate_p == pytest.approx(roc_auc_score(cand.y_hf[white], cand.p_hf[white]))
    # point estimates agree with the audit's own
    assert np.allclose(ok.baseline_p, ok.baseline_u) and np.allclose(ok.change_p, ok.change_u)
    # the same ECGs: paired intervals are narrower (positively correlated models)
    aurocs = ok.loc[ok.metric == "auroc"]
    assert ((aurocs.change_ci_high_p - aurocs.change_ci_low_p)
            < (aurocs.change_ci_high_u - aurocs.change_ci_low_u)).all()
    assert set(ok.loc[ok.metric == "auroc", "ci_method_p"]) == {"paired DeLong"}
    assert ok.loc[ok.metric == "sensitivity", "ci_method_p"].str.contains(
        "paired bootstrap.*clustered by patient").all()


def test_paired_comparison_is_seeded() -> None:
    base, cand = _two_models(1500, seed=5)
    cfg = parse_config(CONFIG)
    a = compare_predictions(base, cand, cfg, n_boot=100, seed=3).table
    b = compare_predictions(base, cand, cfg, n_boot=100, seed=3).table
    pd.testing.assert_frame_equal(a, b)


def test_paired_comparison_refuses_different_ecgs() -> None:
    base, cand = _two_models(800, seed=6)
    cfg = parse_config(CONFIG)
    with pytest.raises(InputError, match="ids only in the baseline"):
        compare_predictions(base, cand.iloc[:-5], cfg)
    flipped = cand.copy()
    flipped.loc[3, "y_hf"] = 1 - flipped.loc[3, "y_hf"]
    with pytest.raises(InputError, match="labels differ for 1 ids"):
        compare_predictions(base, flipped, cfg)
    with pytest.raises(InputError, match="id_column"):
        compare_predictions(base, cand, parse_config({**CONFIG, "id_column": None}))


def test_config_from_result_restores_intersection_names() -> None:
    cfg = {**CONFIG, "attributes": {"sex": {}, "race": {"reference": "White"}}}
    result = audit(make_synthetic_cohort(600, seed=1).frame, cfg)
    assert config_from_result(result) is result.config  # the audit's own typed config
    # a result read back from results.json (sorted keys) restores the attribute order
    loaded = AuditResult.from_dict(json.loads(result.to_json()))
    rebuilt = config_from_result(loaded)
    assert list(rebuilt.attributes) == ["sex", "race"]
    assert rebuilt.intersections == [["sex", "race"]]


@pytest.mark.slow
def test_paired_intervals_cover_the_true_change() -> None:
    """Binormal models with correlated noise: true sensitivity and AUROC in closed form."""
    rng = np.random.default_rng(2024)
    n, d_b, d_c, rho, t = 600, 1.6, 2.0, 0.6, 0.0
    true_sens = norm.cdf(d_c / 2 - t) - norm.cdf(d_b / 2 - t)
    true_auc = norm.cdf(d_c / math.sqrt(2)) - norm.cdf(d_b / math.sqrt(2))
    cover = {"sensitivity": 0, "auroc": 0}
    sims = 200
    for _ in range(sims):
        y = (rng.random(n) < 0.3).astype(int)
        e1 = rng.normal(size=n)
        e2 = rho * e1 + math.sqrt(1 - rho**2) * rng.normal(size=n)
        pb = expit(d_b / 2 * (2 * y - 1) + e1)
        pc = expit(d_c / 2 * (2 * y - 1) + e2)
        res = paired_group(y, pb, pc, 0.5, 0.5, np.arange(n), 300, 0.95, rng, 0.05)
        for metric, truth in (("sensitivity", true_sens), ("auroc", true_auc)):
            r = res[metric]
            cover[metric] += r["change_ci_low"] <= truth <= r["change_ci_high"]
    for metric, hits in cover.items():
        assert 0.91 <= hits / sims <= 0.98, (metric, hits / sims)


def test_compare_cli_identical_models_pass_and_degraded_group_fails(tmp_path: Path) -> None:
    base, _ = _two_models(4000, seed=8)
    worse = base.copy()
    rng = np.random.default_rng(9)
    black = (worse["race"] == "Black").to_numpy()
    worse.loc[black, "p_hf"] = rng.random(int(black.sum()))   # the candidate breaks one group
    for name, frame in (("base", base), ("same", base), ("worse", worse)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        audit(frame, CONFIG).save(tmp_path / name)
    (tmp_path / "nr.yaml").write_text(NO_REGRESSION)
    runner = CliRunner()

    def run(cand: str, *extra: str) -> tuple[int, str, dict[str, object]]:
        res = runner.invoke(app, [
            "compare", str(tmp_path / "base"), str(tmp_path / cand), "--policy",
            str(tmp_path / "nr.yaml"), "--out", str(tmp_path / "g.json"),
            "--baseline-predictions", str(tmp_path / "base.csv"),
            "--candidate-predictions", str(tmp_path / f"{cand}.csv"), "--bootstrap", "200",
            *extra])
        return res.exit_code, res.output, json.loads((tmp_path / "g.json").read_text())

    code, out, gate = run("same")
    assert code == 0, out
    assert gate["mode"] == "compare"
    assert all(r["value"] == 0.0 for r in gate["rules"])
    code, out, gate = run("worse", "--table", str(tmp_path / "cmp.csv"))
    assert code == 1, out
    failed = {r["group"] for r in gate["rules"] if r["outcome"] == "fail"}
    assert failed == {"Black"}
    assert "paired DeLong" in out
    table = pd.read_csv(tmp_path / "cmp.csv")
    assert {"paired DeLong", "unpaired normal approximation from both results' CIs"} <= set(
        table["ci_method"])
    # without predictions the comparison is unpaired, and says so
    res = runner.invoke(app, ["compare", str(tmp_path / "base"), str(tmp_path / "worse")])
    assert res.exit_code == 0
    assert "comparison (unpaired)" in res.output


def test_compare_policy_may_mix_change_and_candidate_rules() -> None:
    base = make_result([metric_row("White", 0.80, 0.76, 0.84)])
    cand = make_result([metric_row("White", 0.90, 0.88, 0.92)])
    policy = parse_policy(yaml.safe_load("""
rules:
  - {metric: auroc, max_worsening: 0.01}
  - {metric: auroc, min: 0.85}
"""))
    gate = evaluate(cand, policy, compare_results(base, cand).table)
    assert [o.outcome for o in gate.outcomes] == ["pass", "pass"]
    assert gate.mode == "compare"
