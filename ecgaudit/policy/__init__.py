"""Policy gating: judge an audit result against a YAML fairness policy.

>>> policy = load_policy("fairness-policy.yaml", result)   # doctest: +SKIP
>>> gate = evaluate(result, policy)                          # doctest: +SKIP
>>> gate.exit_code, gate.to_dict()["summary"]                # doctest: +SKIP

``compare_results`` / ``compare_predictions`` build the candidate-vs-baseline table that
change rules (``max_worsening``, ``max_abs_change``) are judged on; see ``docs/gating.md``.
"""

from ecgaudit.policy._compare import (
    COMPARISON_COLUMNS,
    PAIRED_METRICS,
    Comparison,
    compare_predictions,
    compare_results,
    config_from_result,
    merge_comparisons,
)
from ecgaudit.policy._evaluate import evaluate
from ecgaudit.policy._gate import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    GateResult,
    RuleOutcome,
)
from ecgaudit.policy._schema import Policy, Rule, load_policy, parse_policy

__all__ = [
    "COMPARISON_COLUMNS",
    "EXIT_FAIL",
    "EXIT_INCONCLUSIVE",
    "EXIT_PASS",
    "PAIRED_METRICS",
    "Comparison",
    "GateResult",
    "Policy",
    "Rule",
    "RuleOutcome",
    "compare_predictions",
    "compare_results",
    "config_from_result",
    "evaluate",
    "load_policy",
    "merge_comparisons",
    "parse_policy",
]
