"""Rule evaluation on hand-built result tables: outcomes, statuses and exit codes."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecgaudit.errors import ConfigError
from ecgaudit.policy import evaluate, parse_policy
from ecgaudit.policy._judge import judge_range
from ecgaudit.result import AuditResult
from ecgaudit.schema import DISPARITY_COLUMNS, METRIC_COLUMNS

NAN = float("nan")


def metric_row(group: str, est: float, lo: float, hi: float, *, metric: str = "auroc",
               attribute: str = "race", task: str = "hf", n: int | None = 500,
               n_pos: int | None = 50, status: str = "ok", reason: str = "") -> dict[str, Any]:
    return {"task": task, "attribute": attribute, "group": group, "metric": metric,
            "estimate": est, "ci_low": lo, "ci_high": hi, "ci_method": "delong", "n": n,
            "n_pos": n_pos, "status": status, "reason": reason}


def disp_row(group: str, diff: float, dlo: float, dhi: float, ratio: float = NAN,
             rlo: float = NAN, rhi: float = NAN, *, metric: str = "sensitivity",
             attribute: str = "race", reference: str = "White", status: str = "ok",
             reason: str = "") -> dict[str, Any]:
    return {"task": "hf", "attribute": attribute, "group": group, "reference": reference,
            "metric": metric, "difference": diff, "difference_ci_low": dlo,
            "difference_ci_high": dhi, "ratio": ratio, "ratio_ci_low": rlo,
            "ratio_ci_high": rhi, "ci_method": "newcombe", "test": "z", "p_value": 0.5,
            "p_holm": 0.5, "p_bh": 0.5, "status": status, "reason": reason}


def make_result(metrics: list[dict[str, Any]], disparities: list[dict[str, Any]] | None = None,
                **manifest: Any) -> AuditResult:
    m = pd.DataFrame(metrics, columns=list(METRIC_COLUMNS))
    m["n"] = m["n"].astype("Int64")
    m["n_pos"] = m["n_pos"].astype("Int64")
    d = pd.DataFrame(disparities or [], columns=list(DISPARITY_COLUMNS))
    return AuditResult(metrics=m, disparities=d, manifest=manifest)


def outcomes(result: AuditResult, *rules: dict[str, Any], **policy: Any) -> dict[str, str]:
    gate = evaluate(result, parse_policy({"rules": list(rules), **policy}))
    return {o.group or "": o.outcome for o in gate.outcomes}


# --- the three-way judgement ------------------------------------------------------------

@pytest.mark.parametrize(("est", "lo", "hi", "judge", "expected"), [
    (0.90, 0.85, 0.95, "ci", "pass"),        # whole CI above the minimum
    (0.70, 0.65, 0.75, "ci", "fail"),        # whole CI below
    (0.82, 0.75, 0.89, "ci", "inconclusive"),  # straddles 0.80
    (0.82, 0.75, 0.89, "point", "pass"),
    (0.82, 0.75, 0.89, "ci_low", "fail"),
    (0.78, 0.70, 0.86, "ci_high", "pass"),
    (0.80, 0.80, 0.90, "ci", "pass"),        # the bound itself is accepted
    (NAN, NAN, NAN, "point", "inconclusive"),
    (0.90, NAN, NAN, "ci", "inconclusive"),  # no interval: a ci rule cannot pass
    (0.90, NAN, NAN, "ci_low", "inconclusive"),
])
def test_min_rule_three_outcomes(est: float, lo: float, hi: float, judge: str,
                                 expected: str) -> None:
    assert judge_range(est, lo, hi, judge, 0.80, math.inf).outcome == expected


finite = st.floats(-5, 5, allow_nan=False)
maybe_nan = st.one_of(finite, st.just(NAN), st.none())


@given(est=maybe_nan, lo=maybe_nan, hi=maybe_nan, a=finite, b=finite,
       judge=st.sampled_from(["point", "ci", "ci_low", "ci_high"]))
def test_nan_never_passes(est: float | None, lo: float | None, hi: float | None, a: float,
                          b: float, judge: str) -> None:
    low, high = min(a, b), max(a, b)
    j = judge_range(est, lo, hi, judge, low, high)
    used = {"point": [est], "ci_low": [lo], "ci_high": [hi], "ci": [lo, hi]}[judge]
    if any(v is None or math.isnan(v) for v in used):
        assert j.outcome == "inconclusive"


@given(lo=finite, width=st.floats(0, 3), a=finite, b=finite)
def test_ci_verdicts_agree_with_every_point_inside(lo: float, width: float, a: float,
                                                   b: float) -> None:
    hi = lo + width
    low, high = min(a, b), max(a, b)
    verdict = judge_range((lo + hi) / 2, lo, hi, "ci", low, high).outcome
    points = [judge_range(x, x, x, "point", low, high).outcome for x in (lo, (lo + hi) / 2, hi)]
    if verdict == "pass":
        assert set(points) == {"pass"}
    elif verdict == "fail":
        assert set(points) == {"fail"}
    else:
        assert "pass" in points or low <= lo <= high or low <= hi <= high or lo <= low <= hi


# --- rule kinds ------------------------------------------------------------------------

def test_value_rule_statuses() -> None:
    res = make_result([
        metric_row("White", 0.90, 0.88, 0.92),
        metric_row("Black", 0.70, 0.65, 0.75),
        metric_row("Asian", NAN, NAN, NAN, status="insufficient", reason="no positive cases"),
        metric_row("Other", NAN, NAN, NAN, n=None, n_pos=None, status="suppressed",
                   reason="fewer than 11 patients"),
        metric_row("Hispanic", 0.91, 0.86, 0.96, status="unstable", reason="8 events"),
    ])
    gate = evaluate(res, parse_policy({"rules": [{"metric": "auroc", "min": 0.8}]}))
    got = {o.group: o for o in gate.outcomes}
    assert {k: v.outcome for k, v in got.items()} == {
        "White": "pass", "Black": "fail", "Asian": "inconclusive", "Other": "inconclusive",
        "Hispanic": "pass"}
    assert "insufficient: no positive cases" in got["Asian"].detail
    assert "suppressed" in got["Other"].detail
    assert "unstable" in got["Hispanic"].detail


def test_scoping_by_task_attribute_group_and_exclusion() -> None:
    res = make_result([
        metric_row("all", 0.9, 0.88, 0.92, attribute="overall"),
        metric_row("White", 0.9, 0.88, 0.92),
        metric_row("Unknown", 0.5, 0.3, 0.7),
        metric_row("female", 0.9, 0.88, 0.92, attribute="sex"),
        metric_row("Unknown & female", 0.5, 0.3, 0.7, attribute="race & sex"),
        metric_row("White", 0.5, 0.4, 0.6, task="af"),
    ])
    assert outcomes(res, {"metric": "auroc", "min": 0.8, "tasks": ["hf"],
                          "exclude_groups": ["Unknown"]}) == {
        "all": "pass", "White": "pass", "female": "pass"}
    assert outcomes(res, {"metric": "auroc", "min": 0.8, "attributes": ["sex"]}) == {
        "female": "pass"}
    assert outcomes(res, {"metric": "auroc", "min": 0.8, "tasks": ["af"]}) == {
        "White": "fail"}


def test_rule_matching_nothing_is_inconclusive_not_pass() -> None:
    res = make_result([metric_row("White", 0.9, 0.88, 0.92)])
    gate = evaluate(res, parse_policy({"rules": [{"metric": "ppv", "min": 0.1}]}))
    assert [o.outcome for o in gate.outcomes] == ["inconclusive"]
    assert gate.exit_code == 3


def test_worst_group_rule_reports_the_worst_group() -> None:
    res = make_result([
        metric_row("all", 0.85, 0.84, 0.86, attribute="overall"),
        metric_row("White", 0.90, 0.88, 0.92),
        metric_row("Black", 0.74, 0.70, 0.78),
        metric_row("Asian", 0.78, 0.72, 0.84),
    ])
    gate = evaluate(res, parse_policy({"rules": [
        {"metric": "auroc", "min": 0.8, "worst_group": True}]}))
    (o,) = gate.outcomes
    assert (o.attribute, o.group, o.outcome, o.value) == ("race", "Black", "fail", 0.74)
    assert "3 groups: 1 pass, 1 fail, 1 inconclusive" in o.detail
    gate = evaluate(res, parse_policy({"rules": [
        {"metric": "auroc", "min": 0.7, "worst_group": True}]}))
    assert [(o.group, o.outcome) for o in gate.outcomes] == [("Black", "pass")]


def test_disparity_difference_and_ratio_rules() -> None:
    res = make_result([metric_row("White", 0.9, 0.88, 0.92)], [
        disp_row("Black", -0.15, -0.22, -0.08, 0.8, 0.7, 0.9),
        disp_row("Asian", 0.01, -0.03, 0.04, 1.01, 0.95, 1.07),
        disp_row("Other", 0.02, -0.10, 0.14, 1.02, 0.85, 1.3),
        disp_row("Unknown", NAN, NAN, NAN, status="suppressed", reason="small"),
    ])
    assert outcomes(res, {"metric": "sensitivity", "max_abs_difference": 0.05}) == {
        "Black": "fail", "Asian": "pass", "Other": "inconclusive", "Unknown": "inconclusive"}
    assert outcomes(res, {"metric": "sensitivity", "ratio_between": [0.8, 1.25]}) == {
        "Black": "inconclusive", "Asian": "pass", "Other": "inconclusive",
        "Unknown": "inconclusive"}
    assert outcomes(res, {"metric": "sensitivity", "max_abs_difference": 0.05,
                          "judge": "point"})["Other"] == "pass"


def test_equivalence_wording_names_tost_and_the_level() -> None:
    res = make_result([metric_row("White", 0.9, 0.88, 0.92)], [
        disp_row("Asian", 0.01, -0.03, 0.04), disp_row("Other", 0.02, -0.10, 0.14)],
        config={"ci_level": 0.9})
    gate = evaluate(res, parse_policy({"rules": [
        {"metric": "sensitivity", "max_abs_difference": 0.05, "equivalence": True}]}))
    details = {o.group: o.detail for o in gate.outcomes}
    assert details["Asian"].startswith("equivalent within margin")
    assert "TOST" in details["Asian"] and "alpha = 0.05" in details["Asian"]
    assert "90% CI" in details["Asian"]
    assert details["Other"].startswith("equivalence not shown")


def test_coverage_rules_min_n_and_required_groups() -> None:
    res = make_result([
        metric_row("White", 0.9, 0.88, 0.92, n=800, n_pos=80),
        metric_row("Black", 0.9, 0.80, 0.99, n=60, n_pos=6),
        metric_row("Other", NAN, NAN, NAN, n=None, n_pos=None, status="suppressed"),
        metric_row("female", 0.9, 0.88, 0.92, attribute="sex", n=430, n_pos=40),
    ])
    got = outcomes(res, {"min_n": 100, "required_groups": {"race": ["Black", "White",
                                                                    "Blak"]}})
    assert got == {"Black": "fail", "White": "pass", "Blak": "fail"}
    gate = evaluate(res, parse_policy({"rules": [
        {"min_n": 100, "required_groups": {"race": ["Blak"]}}]}))
    assert "Did you mean 'Black'" in gate.outcomes[0].detail
    # a suppressed group (n < 11) certainly has fewer than 100 ECGs: fail, not inconclusive
    assert outcomes(res, {"min_n": 100, "attributes": ["race"]})["Other"] == "fail"
    assert outcomes(res, {"min_n": 5, "attributes": ["race"]})["Other"] == "inconclusive"
    assert outcomes(res, {"min_positives": 10, "attributes": ["race", "sex"]}) == {
        "White": "pass", "Black": "fail", "Other": "inconclusive", "female": "pass"}


def test_change_rule_without_baseline_is_a_config_error() -> None:
    res = make_result([metric_row("White", 0.9, 0.88, 0.92)])
    with pytest.raises(ConfigError, match="ecgaudit compare"):
        evaluate(res, parse_policy({"rules": [{"metric": "auroc", "max_worsening": 0.02}]}))


# --- exit codes and outputs -----------------------------------------------------------

def _gate_for(*outs: tuple[str, bool], on_inconclusive: str = "fail") -> Any:
    """Build a gate whose rule i has the given outcome (pass/fail/inconclusive)."""
    rows, rules = [], []
    value = {"pass": (0.9, 0.88, 0.92), "fail": (0.6, 0.55, 0.65),
             "inconclusive": (0.8, 0.7, 0.9)}
    for i, (outcome, required) in enumerate(outs):
        rows.append(metric_row(f"g{i}", *value[outcome]))
        rules.append({"id": f"rule{i}", "metric": "auroc", "min": 0.75, "groups": [f"g{i}"],
                      "attributes": ["race"], "required": required})
    res = make_result(rows)
    return evaluate(res, parse_policy({"rules": rules, "on_inconclusive": on_inconclusive}))


@pytest.mark.parametrize(("outs", "on_inc", "code", "status"), [
    ((("pass", True), ("pass", True)), "fail", 0, "pass"),
    ((("pass", True), ("fail", True)), "fail", 1, "fail"),
    ((("inconclusive", True), ("fail", True)), "fail", 1, "fail"),
    ((("inconclusive", True), ("pass", True)), "fail", 3, "inconclusive"),
    ((("inconclusive", True), ("pass", True)), "warn", 0, "inconclusive"),
    ((("fail", False), ("pass", True)), "fail", 0, "pass"),
    ((("inconclusive", False), ("pass", True)), "fail", 0, "pass"),
])
def test_exit_codes(outs: tuple[tuple[str, bool], ...], on_inc: str, code: int,
                    status: str) -> None:
    gate = _gate_for(*outs, on_inconclusive=on_inc)
    assert [o.outcome for o in gate.outcomes] == [o for o, _ in outs]
    assert gate.exit_code == code
    assert gate.status == status
    warned = on_inc == "warn" or any(o == "fail" and not r for o, r in outs)
    assert bool(gate.warnings) == warned


def test_gate_json_shape_is_the_agreed_contract_and_deterministic() -> None:
    gate = _gate_for(("pass", True), ("fail", True), ("inconclusive", False))
    d = gate.to_dict()
    assert {"status", "exit_code", "summary", "rules"} <= set(d)
    assert d["status"] == "fail" and d["exit_code"] == 1
    assert d["summary"] == {"pass": 1, "fail": 1, "inconclusive": 1}
    keys = {"rule_id", "description", "task", "attribute", "group", "metric", "outcome",
            "value", "ci_low", "ci_high", "detail", "required"}
    assert all(set(r) == keys for r in d["rules"])
    assert [r["outcome"] for r in d["rules"]] == ["pass", "fail", "inconclusive"]
    assert d["rules"][2]["required"] is False
    text = gate.to_json()
    assert json.loads(text) == d
    assert text == _gate_for(("pass", True), ("fail", True), ("inconclusive", False)).to_json()
    nan_gate = evaluate(make_result([metric_row("g", NAN, NAN, NAN)]),
                        parse_policy({"rules": [{"metric": "auroc", "min": 0.5}]}))
    assert nan_gate.to_dict()["rules"][0]["value"] is None
    assert "NaN" not in nan_gate.to_json()
    assert "no estimate" in nan_gate.outcomes[0].detail
