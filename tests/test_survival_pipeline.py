"""Survival tasks through config, validation, pipeline, policy and CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ecgaudit
from ecgaudit.cli import app
from ecgaudit.errors import ConfigError, InputError
from ecgaudit.metrics._survtable import SURVIVAL_METRIC_NAMES
from ecgaudit.policy import evaluate, parse_policy
from ecgaudit.schema import DISPARITY_COLUMNS, METRIC_COLUMNS, SURVIVAL_METRICS

runner = CliRunner()


def _frame(n=600, seed=0, site_b_max=None):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    sex = np.where(np.arange(n) % 2 == 0, "female", "male")
    te = rng.weibull(1.2, n) * 900 * np.exp(-0.6 * x)
    tc = rng.uniform(200, 2000, n)
    site = np.where(np.arange(n) % 3 == 0, "B", "A")
    if site_b_max is not None:
        tc = np.where(site == "B", np.minimum(tc, site_b_max), tc)
    return pd.DataFrame({"t": np.round(np.minimum(te, tc), 1), "e": (te <= tc).astype(int),
                         "risk": x, "p": 1 / (1 + np.exp(-(x - 0.4))), "sex": sex,
                         "site": site, "age": rng.integers(30, 90, n).astype(float)})


def _cfg(**kw):
    task = {"name": "death", "kind": "survival", "time": "t", "event": "e", "score": "p",
            "horizons": [365, 900]}
    task.update(kw.pop("task", {}))
    kw.setdefault("bootstrap", 0)  # closed forms unless a test asks (the default is B = 1000)
    return {"tasks": [task], "attributes": {"sex": {"column": "sex"}, "site": {}}, **kw}


def test_tables_have_horizon_and_every_metric():
    r = ecgaudit.audit(_frame(), _cfg())
    assert list(r.metrics.columns) == list(METRIC_COLUMNS)
    assert list(r.disparities.columns) == list(DISPARITY_COLUMNS)
    assert set(r.metrics.metric) == set(SURVIVAL_METRIC_NAMES) == set(SURVIVAL_METRICS)
    m = r.metrics
    assert m[m.metric == "harrell_c"].horizon.isna().all()
    assert set(r.metrics.loc[r.metrics.metric == "td_auroc", "horizon"]) == {365.0, 900.0}
    c = r.metrics[(r.metrics.metric == "harrell_c") & (r.metrics.attribute == "overall")].iloc[0]
    assert c.ci_method == "ij-wald" and c.ci_low < c.estimate < c.ci_high
    d = r.disparities[(r.disparities.metric == "harrell_c") & (r.disparities.attribute == "sex")]
    assert d.iloc[0].test == "wald-z" and np.isfinite(d.iloc[0].p_holm)


def test_binary_rows_get_null_horizon():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": np.tile([0, 1], 50), "p": rng.uniform(size=100),
                       "sex": np.tile(["a", "b"], 50)})
    r = ecgaudit.audit(df, {"tasks": [{"name": "x", "label": "y", "score": "p"}],
                            "attributes": {"sex": {}}})
    assert r.metrics["horizon"].isna().all() and r.disparities["horizon"].isna().all()


def test_group_without_follow_up_is_insufficient_with_reason():
    r = ecgaudit.audit(_frame(site_b_max=500.0), _cfg())
    m = r.metrics
    row = m[(m.attribute == "site") & (m.group == "B") & (m.metric == "td_auroc")
            & (m.horizon == 900)].iloc[0]
    assert row.status == "insufficient" and np.isnan(row.estimate)
    assert "follow-up in this group ends at" in row.reason and "900" in row.reason
    ok = m[(m.attribute == "site") & (m.group == "B") & (m.metric == "td_auroc")
           & (m.horizon == 365)].iloc[0]
    assert ok.status in ("ok", "unstable") and np.isfinite(ok.estimate)
    d = r.disparities
    assert (d[(d.attribute == "site") & (d.horizon == 900)].status == "insufficient").all()


def test_risk_scores_leave_probability_metrics_insufficient():
    r = ecgaudit.audit(_frame(), _cfg(task={"score": "risk", "score_type": "risk"}))
    m = r.metrics[r.metrics.attribute == "overall"].set_index(["metric", "horizon"]).sort_index()
    assert m.loc[("brier", 365.0)].status == "insufficient"
    assert "probability" in m.loc[("brier", 365.0)].reason
    assert m.loc[("td_auroc", 365.0)].status == "ok"


def test_bootstrap_is_reproducible_and_covers_every_metric(tmp_path):
    cfg = _cfg(bootstrap=30, seed=3)
    a = ecgaudit.audit(_frame(), cfg).to_json()
    b = ecgaudit.audit(_frame(), cfg).to_json()
    assert a == b
    r = ecgaudit.audit(_frame(), cfg)
    ok = r.metrics[r.metrics.status == "ok"]
    assert (ok.ci_method == "bootstrap-percentile").all()
    assert (ok.ci_high > ok.ci_low).all()
    c = ecgaudit.audit(_frame(), _cfg(bootstrap=30, seed=4)).metrics
    assert not np.allclose(c.ci_low.fillna(0), r.metrics.ci_low.fillna(0))
    paths = r.save(tmp_path)
    back = ecgaudit.AuditResult.load(paths["results"])
    assert back.metrics.horizon.isna().sum() == r.metrics.horizon.isna().sum()


def test_small_group_suppressed():
    df = _frame()
    df.loc[:4, "sex"] = "other"
    r = ecgaudit.audit(df, _cfg())
    m = r.metrics[(r.metrics.group == "other")]
    assert (m.status == "suppressed").all() and m.estimate.isna().all() and m.n.isna().all()


def test_competing_event_code():
    df = _frame()
    df.loc[df.index % 7 == 0, "e"] = 2
    r = ecgaudit.audit(df, _cfg(task={"competing_event": 2}))
    assert (r.metrics.loc[r.metrics.attribute == "overall", "status"] != "insufficient").all()
    with pytest.raises(InputError, match="competing"):
        ecgaudit.audit(df, _cfg())


@pytest.mark.parametrize(("change", "needle"), [
    (lambda d: d.assign(t=d.t.where(d.index != 3, -1.0)), "follow-up times"),
    (lambda d: d.assign(t=d.t.where(d.index != 3, np.nan)), "follow-up time is missing"),
    (lambda d: d.assign(e=d.e.where(d.index != 3, 5)), "event values must be 1"),
    (lambda d: d.assign(p=d.p + 2), "set `score_type: risk`"),
    (lambda d: d.assign(e=0), "no events"),
])
def test_bad_values_are_input_errors(change, needle):
    with pytest.raises(InputError, match=needle.replace("`", ".").replace("(", ".")):
        ecgaudit.audit(change(_frame()), _cfg())


def test_config_rules():
    with pytest.raises(ConfigError, match="horizons"):
        ecgaudit.audit(_frame(), _cfg(task={"horizons": []}))
    with pytest.raises(InputError, match="longest follow-up"):
        ecgaudit.audit(_frame(), _cfg(task={"horizons": [1e6]}))
    with pytest.raises(ConfigError, match="label"):
        ecgaudit.audit(_frame(), {"tasks": [{"name": "x", "score": "p"}]})
    mixed = _cfg(threshold={"rule": "youden"})  # mixed configs: tests/test_survival_mixed.py
    mixed["tasks"].append({"name": "b", "label": "e", "score": "p"})
    with pytest.raises(ConfigError, match="survival tasks need a fixed threshold"):
        ecgaudit.audit(_frame(), mixed)


def test_policy_rules_on_survival_metrics():
    r = ecgaudit.audit(_frame(), _cfg())
    pol = parse_policy({"rules": [{"metric": "harrell_c", "min": 0.5, "judge": "point"},
                                  {"metric": "td_auroc", "max_abs_difference": 0.5,
                                   "judge": "point"}]}, r)
    gate = evaluate(r, pol)
    by_rule = {}
    for o in gate.outcomes:
        by_rule.setdefault(o.rule_id.split("-")[1], set()).add(o.outcome)
    assert by_rule["harrell_c"] == {"pass"}
    # td-AUROC differences have no closed-form interval (bootstrap is off here): the gate
    # judges on evidence, so a point estimate alone cannot pass a rule (docs/small-groups.md).
    assert by_rule["td_auroc"] == {"inconclusive"} and gate.exit_code == 3
    assert all("no confidence interval" in o.detail for o in gate.outcomes
               if o.rule_id.split("-")[1] == "td_auroc")
    strict = parse_policy({"rules": [{"metric": "harrell_c", "min": 0.99}]}, r)
    assert evaluate(r, strict).exit_code == 1


def test_cli_flags(tmp_path):
    path = tmp_path / "s.csv"
    _frame().to_csv(path, index=False)
    out = tmp_path / "out"
    res = runner.invoke(app, ["audit", str(path), "--time", "t", "--event", "e", "--score",
                              "risk", "--risk", "--horizon", "365", "--horizon", "900",
                              "--sex", "sex", "--out", str(out), "--no-report"])
    assert res.exit_code == 0, res.output
    m = pd.read_csv(out / "metrics.csv")
    assert "horizon" in m.columns and (m.metric == "uno_c").any()
    bad = runner.invoke(app, ["audit", str(path), "--time", "t", "--event", "e", "--score",
                              "risk", "--sex", "sex", "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "--horizon" in bad.output and "Traceback" not in bad.output
    stray = runner.invoke(app, ["audit", str(path), "--label", "e", "--score", "p",
                                "--horizon", "365", "--out", str(tmp_path / "o3")])
    assert stray.exit_code == 2 and "--time" in stray.output


def test_numpy_and_compiled_engines_agree():
    from ecgaudit.metrics import _kernels

    if not _kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    df = _frame(n=300)
    df.loc[df.index % 9 == 0, "e"] = 2
    cfg = _cfg(bootstrap=8, task={"competing_event": 2})
    a = ecgaudit.audit(df, {**cfg, "engine": "numpy"})
    b = ecgaudit.audit(df, {**cfg, "engine": "compiled"})
    for col in ("estimate", "ci_low", "ci_high"):
        np.testing.assert_allclose(a.metrics[col], b.metrics[col], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a.disparities["difference_ci_low"],
                               b.disparities["difference_ci_low"], rtol=1e-9, atol=1e-12)
