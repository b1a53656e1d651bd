"""Gate rule outcomes on survival metrics name their horizon; rules may select horizons."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ecgaudit
from ecgaudit.cli import app
from ecgaudit.config import parse_config
from ecgaudit.errors import ConfigError
from ecgaudit.pipeline import compare_predictions
from ecgaudit.policy import evaluate, parse_policy
from ecgaudit.reports._model import _gate_view

runner = CliRunner()
HORIZONS = (365.0, 900.0)


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    te = rng.weibull(1.2, n) * 900 * np.exp(-0.6 * x)
    tc = rng.uniform(200, 2000, n)
    e = (te <= tc).astype(int)
    return pd.DataFrame({
        "id": np.arange(n), "t": np.round(np.minimum(te, tc), 1), "e": e,
        "p": 1 / (1 + np.exp(-(x - 0.4))), "sex": np.where(np.arange(n) % 2 == 0, "f", "m"),
        "y": (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int),
        "q": np.clip(1 / (1 + np.exp(-x)) + rng.normal(0, 0.1, n), 0.01, 0.99)})


def _config(**kw: object) -> dict:
    return {"tasks": [{"name": "death", "kind": "survival", "time": "t", "event": "e",
                       "score": "p", "horizons": list(HORIZONS)},
                      {"name": "afib", "label": "y", "score": "q"}],
            "attributes": {"sex": {"column": "sex", "reference": "f"}}, "id_column": "id",
            "threshold": {"rule": "fixed", "value": 0.4}, "bootstrap": 30, "seed": 2, **kw}


@pytest.fixture(scope="module")
def result() -> ecgaudit.AuditResult:
    return ecgaudit.audit(_frame(), _config())


def _gate(result: ecgaudit.AuditResult, *rules: dict):
    return evaluate(result, parse_policy({"rules": list(rules)}, result))


def test_every_survival_outcome_names_its_horizon(result) -> None:
    m = result.metrics
    td = m[m.metric == "td_auroc"]
    gate = _gate(result, {"metric": "td_auroc", "min": 0.5, "judge": "ci_low"},
                 {"metric": "sensitivity", "min": 0.0, "judge": "point"})
    td_out = [o for o in gate.outcomes if o.metric == "td_auroc"]
    assert len(td_out) == len(td) == 3 * len(HORIZONS)  # overall, f, m x 2 horizons
    assert sorted(o.horizon for o in td_out) == sorted(td.horizon.tolist())
    for o in td_out:
        tag = f"td_auroc@{o.horizon:g}"
        assert o.where.endswith(f" | {tag}") and o.detail.startswith(tag)
        row = td[(td.group == o.group) & (td.horizon == o.horizon)].iloc[0]
        assert o.ci_low == row.ci_low and o.value == row.estimate
    # a metric of both kinds: survival rows name a horizon, the binary task's rows do not
    sens = [o for o in gate.outcomes if o.metric == "sensitivity"]
    assert {o.task for o in sens if o.horizon is None} == {"afib"}
    assert {o.horizon for o in sens if o.task == "death"} == set(HORIZONS)
    assert all("@" not in o.where for o in sens if o.task == "afib")
    # no two outcomes of a rule read the same (they did before: one per horizon)
    for rid in {o.rule_id for o in gate.outcomes}:
        names = [o.where for o in gate.outcomes if o.rule_id == rid]
        assert len(names) == len(set(names)), rid


def test_gate_json_and_junit_carry_the_horizon(result, tmp_path) -> None:
    junitparser = pytest.importorskip("junitparser")
    gate = _gate(result, {"metric": "td_auroc", "min": 0.99, "judge": "ci_low"},
                 {"metric": "auroc", "min": 0.5, "judge": "point", "tasks": ["afib"]})
    rules = json.loads(gate.to_json())["rules"]
    assert all("horizon" in r for r in rules)  # every entry has the key in such a gate
    assert {r["horizon"] for r in rules if r["metric"] == "td_auroc"} == set(HORIZONS)
    assert {r["horizon"] for r in rules if r["metric"] == "auroc"} == {None}
    path = tmp_path / "gate.xml"
    path.write_text(gate.to_junit_xml(), encoding="utf-8")
    suites = {s.name: s for s in junitparser.JUnitXml.fromfile(str(path))}
    names = [c.name for c in suites["r1-td_auroc-min"]]
    assert len(names) == len(set(names)) == 6
    assert "death | sex=f | td_auroc@365" in names and "death | sex=f | td_auroc@900" in names
    failed = [c for c in suites["r1-td_auroc-min"] if c.result]  # every case fails 0.99
    assert len(failed) == 6 and all("td_auroc@" in c.result[0].message for c in failed)
    assert {c.name for c in suites["r2-auroc-min"]} == {"afib | overall=all", "afib | sex=f",
                                                       "afib | sex=m"}


def test_binary_only_gate_has_no_horizon(result) -> None:
    gate = _gate(result, {"metric": "auroc", "min": 0.5, "judge": "point"})
    text = gate.to_json()
    assert "horizon" not in text and "@" not in gate.to_junit_xml()
    assert {o.where for o in gate.outcomes} == {"afib | overall=all", "afib | sex=f",
                                                  "afib | sex=m"}


@pytest.mark.parametrize("horizon, expected", [(365, {365.0}), ([900], {900.0}),
                                               ([365, 900.0], {365.0, 900.0})])
def test_rule_selects_horizons(result, horizon, expected) -> None:
    gate = _gate(result, {"metric": "brier", "max": 0.5, "judge": "point", "horizon": horizon})
    assert {o.horizon for o in gate.outcomes} == expected
    assert len(gate.outcomes) == 3 * len(expected)
    assert gate.outcomes[0].description.endswith(
        "at horizon" + ("s " if len(expected) > 1 else " ")
        + ", ".join(f"{h:g}" for h in sorted(expected)))


def test_worst_group_and_disparity_per_horizon(result) -> None:
    d = result.disparities
    gate = _gate(result, {"metric": "td_auroc", "min": 0.5, "worst_group": True},
                 {"metric": "oe_ratio", "max_abs_difference": 5.0, "horizon": 900})
    worst = [o for o in gate.outcomes if o.rule_id.startswith("r1")]
    # one worst group per task x attribute x horizon (not one over both horizons)
    assert sorted(o.horizon for o in worst) == sorted(HORIZONS)
    td = result.metrics.query("metric == 'td_auroc' and attribute == 'sex'")
    for o in worst:
        lowest = td[td.horizon == o.horizon].sort_values("estimate").iloc[0]
        assert o.group == lowest.group and o.value == lowest.estimate
    disp = [o for o in gate.outcomes if o.rule_id.startswith("r2")]
    row = d[(d.metric == "oe_ratio") & (d.horizon == 900.0)].iloc[0]
    assert len(disp) == 1 and disp[0].horizon == 900.0 and disp[0].group == row.group
    assert disp[0].value == row.difference and "oe_ratio@900 difference" in disp[0].detail


@pytest.mark.parametrize("rule, needle", [
    ({"metric": "td_auroc", "min": 0.5, "horizon": 1000}, "unknown horizon '1000'"),
    ({"metric": "uno_c", "min": 0.5, "horizon": 365}, "unknown horizon '365'"),
    ({"metric": "harrell_c", "min": 0.5, "horizon": 365}, "metric 'harrell_c' has none"),
    ({"metric": "auroc", "min": 0.5, "horizon": 365}, "metric 'auroc' has none"),
    ({"min_n": 10, "horizon": 365}, "a rule without a metric has none"),
])
def test_bad_horizon_selection_is_a_config_error(result, rule, needle) -> None:
    with pytest.raises(ConfigError, match="horizon") as err:
        parse_policy({"rules": [rule]}, result, source="p.yaml")
    assert needle in str(err.value) and "p.yaml: invalid policy" in str(err.value)
    if "unknown" in needle:
        valid = "900" if rule["metric"] == "uno_c" else "365, 900"
        assert f"Valid: {valid}" in str(err.value)


@pytest.mark.parametrize("value", [-1, 0, [], "soon", [365, "x"]])
def test_malformed_horizon_is_a_config_error(value) -> None:
    with pytest.raises(ConfigError, match=r"rules\.0\.horizon|'horizon'"):
        parse_policy({"rules": [{"metric": "td_auroc", "min": 0.5, "horizon": value}]})


def test_cli_gate_names_horizon_and_exits_2_on_unknown(result, tmp_path) -> None:
    result.save(tmp_path / "res")
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - {metric: td_auroc, min: 0.99, judge: ci_low, horizon: 365}\n")
    out = runner.invoke(app, ["gate", str(tmp_path / "res"), "--policy", str(good),
                              "-o", str(tmp_path / "g.json")])
    assert out.exit_code == 1, out.output
    assert "td_auroc@365" in out.output and "td_auroc@900" not in out.output
    saved = json.loads((tmp_path / "g.json").read_text())
    assert {r["horizon"] for r in saved["rules"]} == {365.0}
    view = _gate_view(saved)  # the report's gate table
    assert view is not None and all(r["metric"].endswith("@ 365") for r in view["rules"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {metric: td_auroc, min: 0.5, horizon: [365, 730]}\n")
    out = runner.invoke(app, ["gate", str(tmp_path / "res"), "--policy", str(bad)])
    assert out.exit_code == 2
    assert "horizon" in out.output and "'730'" in out.output and "Traceback" not in out.output


def test_change_rules_name_the_horizon() -> None:
    base = _frame(n=240, seed=4)
    cand = base.assign(p=np.clip(base.p + np.random.default_rng(5).normal(0, 0.05, 240),
                                 0.01, 0.99))
    conf = _config()
    conf["tasks"] = conf["tasks"][:1]
    comp = compare_predictions(base, cand, parse_config(conf), n_boot=20)
    res = ecgaudit.audit(cand, conf | {"bootstrap": 0})
    pol = parse_policy({"rules": [{"metric": "td_auroc", "max_abs_change": 0.5,
                                   "judge": "ci", "horizon": 900}]}, res)
    gate = evaluate(res, pol, comp.table)
    assert gate.mode == "compare" and len(gate.outcomes) == 3
    rows = comp.table[(comp.table.metric == "td_auroc") & (comp.table.horizon == 900.0)]
    for o in gate.outcomes:
        row = rows[rows.group == o.group].iloc[0]
        assert o.horizon == 900.0 and o.value == row.change
        assert o.where.endswith("td_auroc@900") and "td_auroc@900 change" in o.detail


def test_documented_horizon_policies_parse() -> None:
    import re
    from pathlib import Path

    import yaml

    docs = Path(__file__).resolve().parents[1] / "docs"
    blocks = [b for page in ("gating.md", "survival.md")
              for b in re.findall(r"```yaml\n(.*?)```", (docs / page).read_text("utf-8"), re.S)
              if "horizon:" in b]
    assert len(blocks) == 2
    for block in blocks:
        policy = parse_policy(yaml.safe_load(block))
        assert all(r.horizon for r in policy.rules if r.metric != "harrell_c")
