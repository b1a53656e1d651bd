"""Gate on evidence: weak estimates (unstable, zero-width, missing or fallback intervals)
are inconclusive unless the whole interval decides the rule (issue 12, item 4)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from ecgaudit.policy import evaluate, parse_policy
from ecgaudit.policy._judge import gate_on_evidence, judge_range, weak_evidence
from ecgaudit.result import AuditResult
from ecgaudit.schema import DISPARITY_COLUMNS, METRIC_COLUMNS

NAN = float("nan")


def _metric(group: str, est: float, lo: float, hi: float, *, method: str = "delong",
            status: str = "ok", reason: str = "", metric: str = "auroc") -> dict[str, Any]:
    return {"task": "hf", "attribute": "site", "group": group, "metric": metric,
            "estimate": est, "ci_low": lo, "ci_high": hi, "ci_method": method, "n": 200,
            "n_pos": 20, "status": status, "reason": reason}


def _disp(group: str, diff: float, dlo: float, dhi: float, ratio: float, rlo: float,
          rhi: float, *, method: str = "newcombe", status: str = "ok",
          metric: str = "fnr") -> dict[str, Any]:
    return {"task": "hf", "attribute": "age", "group": group, "reference": "60-79",
            "metric": metric, "difference": diff, "difference_ci_low": dlo,
            "difference_ci_high": dhi, "ratio": ratio, "ratio_ci_low": rlo,
            "ratio_ci_high": rhi, "ci_method": method, "test": "z", "p_value": 0.5,
            "p_holm": 0.5, "p_bh": 0.5, "status": status, "reason": ""}


def _result(metrics: list[dict], disparities: list[dict] | None = None) -> AuditResult:
    return AuditResult(pd.DataFrame(metrics, columns=list(METRIC_COLUMNS)),
                       pd.DataFrame(disparities or [], columns=list(DISPARITY_COLUMNS)),
                       manifest={"config": {"ci_level": 0.95, "min_cell_size": 11}})


def _outcomes(res: AuditResult, rule: dict) -> dict[str, Any]:
    gate = evaluate(res, parse_policy({"rules": [rule]}))
    return {o.group: o for o in gate.outcomes}


def test_zero_width_intervals_never_decide() -> None:
    # The demo's bugs: AUROC 1.000 [1.000, 1.000] passed, FNR ratio 0 [0, 0] failed.
    res = _result([_metric("4", 1.0, 1.0, 1.0)],
                  [_disp("<40", -0.1, -0.1, -0.1, 0.0, 0.0, 0.0)])
    for judge in ("ci", "ci_low", "point"):
        (o,) = _outcomes(res, {"metric": "auroc", "min": 0.8, "judge": judge}).values()
        assert o.outcome == "inconclusive" and "zero width" in o.detail, judge
    (o,) = _outcomes(res, {"metric": "fnr", "ratio_between": [0.5, 2.0]}).values()
    assert o.outcome == "inconclusive"
    assert "zero width [0.000, 0.000]" in o.detail and "carries no information" in o.detail


def test_unstable_point_verdict_needs_the_whole_interval() -> None:
    res = _result([
        _metric("straddles", 0.84, 0.60, 0.95, status="unstable", reason="7 positives"),
        _metric("clearly-bad", 0.55, 0.40, 0.70, status="unstable", reason="7 positives"),
        _metric("clearly-good", 0.95, 0.90, 0.99, status="unstable", reason="9 positives"),
        _metric("stable", 0.84, 0.60, 0.95),
    ])
    got = _outcomes(res, {"metric": "auroc", "min": 0.8, "judge": "point"})
    assert got["straddles"].outcome == "inconclusive"
    assert "flagged unstable (7 positives)" in got["straddles"].detail
    assert got["clearly-bad"].outcome == "fail"  # the whole CI lies beyond the limit
    assert "whole CI decides" in got["clearly-bad"].detail
    assert got["clearly-good"].outcome == "pass"
    assert got["stable"].outcome == "pass"  # a stable estimate keeps its point verdict


def test_boundary_fallback_is_inconclusive_unless_decided() -> None:
    res = _result([
        _metric("a", 0.97, 0.70, 0.99, method="wilson-fallback", metric="sensitivity",
                reason="bootstrap replicates collapsed; closed-form fallback"),
        _metric("b", 0.30, 0.10, 0.50, method="wilson-fallback", metric="sensitivity"),
    ])
    got = _outcomes(res, {"metric": "sensitivity", "min": 0.8, "judge": "ci_low"})
    assert got["a"].outcome == "inconclusive"
    assert "boundary fallback (wilson-fallback: bootstrap replicates collapsed" in (
        got["a"].detail)
    assert got["b"].outcome == "fail"


def test_missing_interval_cannot_carry_a_point_verdict() -> None:
    res = _result([_metric("x", 0.70, NAN, NAN, method="none")])
    (o,) = _outcomes(res, {"metric": "auroc", "min": 0.8, "judge": "point"}).values()
    assert o.outcome == "inconclusive" and "no confidence interval" in o.detail


def test_weak_disparity_with_equivalence_is_not_claimed() -> None:
    res = _result([_metric("x", 0.9, 0.8, 0.95)],
                  [_disp("<40", 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, metric="sensitivity")])
    (o,) = _outcomes(res, {"metric": "sensitivity", "max_abs_difference": 0.05,
                           "equivalence": True}).values()
    assert o.outcome == "inconclusive" and o.detail.startswith("equivalence not shown")


def test_worst_group_rule_counts_weak_groups_as_inconclusive() -> None:
    res = _result([_metric("0", 0.90, 0.85, 0.94), _metric("4", 1.0, 1.0, 1.0)])
    (o,) = evaluate(res, parse_policy({"rules": [
        {"metric": "auroc", "min": 0.8, "worst_group": True}]})).outcomes
    assert o.outcome == "inconclusive" and "1 pass, 0 fail, 1 inconclusive" in o.detail


finite = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(est=finite, a=finite, b=finite, limit=st.floats(0.05, 0.95),
       judge=st.sampled_from(["point", "ci", "ci_low", "ci_high"]),
       status=st.sampled_from(["ok", "unstable"]),
       method=st.sampled_from(["delong", "wilson-fallback"]))
def test_a_weak_verdict_stands_only_when_the_whole_ci_agrees(
        est: float, a: float, b: float, limit: float, judge: str, status: str,
        method: str) -> None:
    lo, hi = min(a, b), max(a, b)
    j = judge_range(est, lo, hi, judge, limit, math.inf)
    problems = weak_evidence(est, lo, hi, status=status, reason="", ci_method=method)
    out = gate_on_evidence(j, problems, limit, math.inf)
    if not problems:
        assert out == j
        return
    whole = judge_range(est, lo, hi, "ci", limit, math.inf).outcome
    if hi - lo <= 1e-12:
        assert out.outcome == "inconclusive"
    elif out.outcome != "inconclusive":
        assert out.outcome == j.outcome == whole
    else:
        assert j.outcome == "inconclusive" or j.outcome != whole
