"""Policy file schema: the issue's example parses; mistakes give clear, suggesting errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ecgaudit.errors import ConfigError
from ecgaudit.policy import Policy, load_policy, parse_policy
from ecgaudit.result import AuditResult
from ecgaudit.schema import DISPARITY_COLUMNS, METRIC_COLUMNS

ROOT = Path(__file__).resolve().parents[1]

ISSUE_EXAMPLE = """
rules:
  - {metric: auroc, min: 0.80, judge: ci_low}                     # every group, every task
  - {metric: sensitivity, max_abs_difference: 0.05, judge: ci}    # vs each attribute's reference
  - {metric: fnr, ratio_between: [0.8, 1.25], judge: ci}
  - {metric: cal_slope, between: [0.8, 1.25], judge: point, attributes: [race, sex]}
  - {min_n: 100, required_groups: {race: [Black, White], sex: [female, male]}}
"""


def _result() -> AuditResult:
    rows = []
    for attr, groups in (("overall", ["all"]), ("race", ["White", "Black", "Asian"]),
                         ("sex", ["female", "male"]), ("race & sex", ["Black & female"])):
        for g in groups:
            rows.append({"task": "AFIB", "attribute": attr, "group": g, "metric": "auroc",
                         "estimate": 0.9, "ci_low": 0.85, "ci_high": 0.95, "ci_method": "delong",
                         "n": 500, "n_pos": 50, "status": "ok", "reason": ""})
    return AuditResult(metrics=pd.DataFrame(rows, columns=list(METRIC_COLUMNS)),
                       disparities=pd.DataFrame(columns=list(DISPARITY_COLUMNS)))


def test_issue_example_parses_with_the_documented_kinds(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(ISSUE_EXAMPLE)
    policy = load_policy(path, result=_result())
    assert isinstance(policy, Policy)
    assert [r.kind for r in policy.rules] == ["value", "disparity", "disparity", "value",
                                              "coverage"]
    assert policy.rules[0].bounds() == (0.80, float("inf"))
    assert policy.rules[3].bounds() == (0.8, 1.25)
    assert policy.on_inconclusive == "fail"
    assert len(set(policy.rule_ids())) == 5


@pytest.mark.parametrize(("rule", "kind", "wrong", "suggested"), [
    ({"metric": "aucroc", "min": 0.8}, "metric", "aucroc", "auroc"),
    ({"metric": "auroc", "min": 0.8, "tasks": ["AFIBB"]}, "task", "AFIBB", "AFIB"),
    ({"metric": "auroc", "min": 0.8, "attributes": ["rase"]}, "attribute", "rase", "race"),
    ({"metric": "auroc", "min": 0.8, "attributes": ["race"], "groups": ["Blak"]}, "group",
     "Blak", "Black"),
    ({"min_n": 50, "required_groups": {"sexx": ["female"]}}, "attribute", "sexx", "sex"),
])
def test_unknown_names_are_errors_with_closest_suggestion(
    rule: dict[str, object], kind: str, wrong: str, suggested: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy({"rules": [rule]}, result=_result(), source="p.yaml")
    text = str(err.value)
    assert text.startswith("p.yaml: invalid policy")
    assert f"unknown {kind} '{wrong}'" in text
    assert f"Did you mean '{suggested}'" in text


def test_unknown_metric_is_caught_even_without_a_result() -> None:
    with pytest.raises(ConfigError, match=r"unknown metric 'sensitivty'.*'sensitivity'"):
        parse_policy({"rules": [{"metric": "sensitivty", "min": 0.5}]})


def test_unknown_key_is_named_with_suggestion() -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy({"rules": [{"metric": "auroc", "minimum": 0.8}]})
    assert "rules.0.minimum" in str(err.value)
    assert "unknown key 'minimum'" in str(err.value)


@pytest.mark.parametrize(("rule", "message"), [
    ({"metric": "auroc"}, "a rule needs one criterion"),
    ({"metric": "auroc", "min": 0.8, "max_abs_difference": 0.1}, "only one kind"),
    ({"metric": "auroc", "between": [0.9, 0.8]}, "low <= high"),
    ({"metric": "fnr", "ratio_between": [0.0, 1.2]}, "positive"),
    ({"min": 0.8}, "needs a 'metric'"),
    ({"metric": "auroc", "min_n": 10}, "takes no metric"),
    ({"metric": "cal_slope", "max_worsening": 0.1}, "use 'max_abs_change'"),
    ({"metric": "auroc", "max_abs_difference": 0.1, "worst_group": True}, "worst_group"),
    ({"metric": "auroc", "min": 0.8, "judge": "median"}, "judge"),
])
def test_malformed_rules_are_rejected(rule: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy({"rules": [rule]})


def test_duplicate_ids_empty_rules_and_non_mapping_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="repeated"):
        parse_policy({"rules": [{"id": "a", "metric": "auroc", "min": 0.5},
                                {"id": "a", "metric": "auroc", "max": 0.99}]})
    with pytest.raises(ConfigError, match="rules"):
        parse_policy({"rules": []})
    with pytest.raises(ConfigError, match="mapping"):
        parse_policy(["auroc"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_policy(bad)
    with pytest.raises(ConfigError, match=r"cannot read policy file 'missing\.yaml'"):
        load_policy(tmp_path / "missing.yaml")


def test_example_policies_in_the_repo_are_valid() -> None:
    paths = [*(ROOT / "examples").rglob("*policy*.yaml"), ROOT / "examples" / "ci" /
             "no-regression.yaml"]
    assert len(paths) >= 3
    for path in paths:
        assert load_policy(path).rules, path


def test_issue_policy_judges_a_planted_gap_on_a_real_audit() -> None:
    from ecgaudit import audit
    from ecgaudit.datasets import make_synthetic_cohort
    from ecgaudit.policy import evaluate

    frame = make_synthetic_cohort(3000, seed=2, group_separation={"Black": 0.4}).frame
    result = audit(frame, {"tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
                           "attributes": {"race": {"reference": "White"}, "sex": {}},
                           "intersections": "none"})
    policy = load_policy(ROOT / "examples" / "ci" / "policy.yaml", result=result)
    gate = evaluate(result, policy)
    assert gate.exit_code == 1
    worst = [o for o in gate.outcomes if o.rule_id == "r6-auroc-worst_min"]
    assert [(o.group, o.outcome) for o in worst] == [("Black", "fail")]
