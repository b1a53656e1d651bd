"""Policy gating: judge an audit result against a YAML fairness policy.

>>> policy = load_policy("fairness-policy.yaml", result)   # doctest: +SKIP
>>> gate = evaluate(result, policy)                          # doctest: +SKIP
>>> gate.exit_code, gate.to_dict()["summary"]                # doctest: +SKIP

:func:`ecgaudit.pipeline.compare_results` / :func:`ecgaudit.pipeline.compare_predictions`
build the candidate-vs-baseline :class:`Comparison` that change rules (``max_worsening``,
``max_abs_change``) are judged on; see ``docs/gating.md``. The policy judges numbers only.
"""

from ecgaudit.policy._comparison import COMPARISON_COLUMNS, Comparison
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
    "Comparison",
    "GateResult",
    "Policy",
    "Rule",
    "RuleOutcome",
    "evaluate",
    "load_policy",
    "parse_policy",
]
