"""Paired comparison of two survival models (metrics/_survpaired.py, pipeline/_survcompare.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ecgaudit
from ecgaudit.cli import app
from ecgaudit.config import parse_config
from ecgaudit.errors import InputError
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._survaudit import SurvTask
from ecgaudit.metrics._survpaired import paired_survival
from ecgaudit.pipeline import compare_predictions

runner = CliRunner()


@dataclass
class _G:
    attribute: str
    codes: np.ndarray
    groups: tuple[str, ...]
    reference: int | None


def _frame(n=800, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    te = rng.weibull(1.2, n) * 900 * np.exp(-0.8 * x)
    tc = rng.uniform(200, 2000, n)
    good = x + 0.3 * rng.normal(size=n)
    bad = x + noise * rng.normal(size=n)
    base = pd.DataFrame({"id": np.arange(n), "t": np.round(np.minimum(te, tc), 1),
                         "e": (te <= tc).astype(int), "p": 1 / (1 + np.exp(-(good - 0.5))),
                         "sex": np.where(np.arange(n) % 2 == 0, "female", "male")})
    return base, base.assign(p=1 / (1 + np.exp(-(bad - 0.5))))


def _config(**kw):
    return parse_config({"tasks": [{"name": "death", "kind": "survival", "time": "t",
                                    "event": "e", "score": "p", "horizons": [365, 900]}],
                         "attributes": {"sex": {"column": "sex"}}, "id_column": "id",
                         "seed": 3, **kw})


def test_harrell_change_interval_matches_sksurv_on_the_same_replicates():
    sksurv_metrics = pytest.importorskip("sksurv.metrics")
    base, cand = _frame(n=300, seed=1)
    t, e = base.t.to_numpy(), base.e.to_numpy().astype(np.int8)
    tasks = [[SurvTask("death", t, e, f.p.to_numpy(), f.p.to_numpy(), 0.5, (365.0, 900.0))]
             for f in (base, cand)]
    grp = _G("overall", np.zeros(t.size, np.int64), ("all",), None)
    b = 60
    rows = paired_survival(tasks[0], tasks[1], [grp], None, level=0.9, min_events=5,
                           n_boot=b, seed=11, max_degenerate=0.5)
    row = next(r for r in rows if r["metric"] == "harrell_c")
    # reference: scikit-survival on the rows each replicate drew (same sampler, same seed)
    weights = Sampler(np.zeros(t.size, np.int64), None, 11).draw(range(b))
    diffs = []
    for w in weights:
        rep = np.repeat(np.arange(t.size), w)
        cs = [sksurv_metrics.concordance_index_censored(e[rep] == 1, t[rep], f.p.to_numpy()[rep])[0]
              for f in (base, cand)]
        diffs.append(cs[1] - cs[0])
    lo, hi = np.percentile(diffs, [5, 95])
    assert row["change_ci_low"] == pytest.approx(lo, abs=1e-9)
    assert row["change_ci_high"] == pytest.approx(hi, abs=1e-9)
    full = [sksurv_metrics.concordance_index_censored(e == 1, t, f.p.to_numpy())[0]
            for f in (base, cand)]
    assert row["change"] == pytest.approx(full[1] - full[0], abs=1e-12)
    assert row["ci_method"].startswith("paired bootstrap percentile (B=60")


def test_paired_interval_is_narrower_than_unpaired_and_finds_the_worse_model():
    base, cand = _frame(n=1000, seed=2, noise=0.7)
    cfg = _config(bootstrap=150)
    comp = compare_predictions(base, cand, cfg, n_boot=150)
    t = comp.table
    assert {"horizon", "change", "change_ci_low"} <= set(t.columns)
    over = t[(t.attribute == "overall") & (t.metric == "harrell_c")].iloc[0]
    assert over.change < 0 and over.change_ci_high < 0  # the noisier model ranks worse
    td = t[(t.attribute == "overall") & (t.metric == "td_auroc")]
    assert sorted(td.horizon) == [365.0, 900.0]
    # the unpaired interval (independent samples) from the two audits is wider
    ra = ecgaudit.audit(base, cfg.to_dict())
    rc = ecgaudit.audit(cand, cfg.to_dict())
    ma = ra.metrics.set_index(["attribute", "group", "metric"]).loc[("overall", "all",
                                                                     "harrell_c")]
    mc = rc.metrics.set_index(["attribute", "group", "metric"]).loc[("overall", "all",
                                                                     "harrell_c")]
    unpaired = np.hypot(ma.ci_high - ma.ci_low, mc.ci_high - mc.ci_low)
    assert over.change_ci_high - over.change_ci_low < 0.8 * unpaired


def test_closed_form_paired_harrell_without_bootstrap():
    base, cand = _frame(n=600, seed=4)
    comp = compare_predictions(base, cand, _config(bootstrap=0), n_boot=0)
    t = comp.table
    h = t[t.metric == "harrell_c"]
    assert set(h.ci_method) == {"paired ij-wald"}
    assert (h.change_ci_low < h.change).all() and (h.change < h.change_ci_high).all()
    assert set(t[t.metric == "brier"].ci_method) == {"none"}


def test_different_follow_up_is_a_clear_error():
    base, cand = _frame(n=300, seed=5)
    cand.loc[7, "t"] += 1.0
    with pytest.raises(InputError, match="follow-up times or events differ for 1 ids"):
        compare_predictions(base, cand, _config(bootstrap=0), n_boot=0)


def test_cli_paired_survival_compare(tmp_path):
    base, cand = _frame(n=600, seed=6)
    base.to_csv(tmp_path / "b.csv", index=False)
    cand.to_csv(tmp_path / "c.csv", index=False)
    cfg = _config(bootstrap=50).to_dict()
    (tmp_path / "audit.json").write_text(json.dumps(cfg))
    for name in ("b", "c"):
        r = runner.invoke(app, ["audit", str(tmp_path / f"{name}.csv"), "--config",
                                str(tmp_path / "audit.json"), "--out", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["compare", str(tmp_path / "b"), str(tmp_path / "c"),
                            "--baseline-predictions", str(tmp_path / "b.csv"),
                            "--candidate-predictions", str(tmp_path / "c.csv"),
                            "--bootstrap", "50", "--table", str(tmp_path / "cmp.csv")])
    assert r.exit_code == 0, r.output
    table = pd.read_csv(tmp_path / "cmp.csv")
    paired = table[table.ci_method.str.startswith("paired")]
    assert {"harrell_c", "td_auroc", "brier"} <= set(paired.metric)
    # one row per task x group x metric x horizon: no cross-horizon duplicates
    key = ["task", "attribute", "group", "metric", "horizon"]
    assert not table[key].astype(str).duplicated().any()


def test_change_rules_judge_the_paired_survival_rows():
    from ecgaudit.policy import evaluate, parse_policy

    base, cand = _frame(n=600, seed=2, noise=1.5)
    cfg = _config(bootstrap=40)
    comp = compare_predictions(base, cand, cfg, n_boot=40)
    res = ecgaudit.audit(cand, cfg.to_dict())
    pol = parse_policy({"rules": [
        {"metric": "harrell_c", "max_worsening": 0.01, "judge": "ci"},
        {"metric": "td_auroc", "max_worsening": 0.5, "judge": "point"}]}, res)
    gate = evaluate(res, pol, comp.table)
    c = [o for o in gate.outcomes if o.metric == "harrell_c" and o.group == "all"]
    assert [o.outcome for o in c] == ["fail"] and c[0].ci_high < -0.01
    td = [o for o in gate.outcomes if o.metric == "td_auroc"]
    assert len(td) == 2 * 3 and {o.outcome for o in td} == {"pass"}  # 2 horizons x 3 groups
