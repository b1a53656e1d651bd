"""Before/after: paired comparison of the base and adapted models and the no-group-worse gate.

Fine-tuning's gate lives here, in the pipeline: it crosses ``finetune`` (its config),
``policy`` (the rule and the verdict) and the paired comparison.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ecgaudit.config import AuditConfig
from ecgaudit.finetune._config import FinetuneConfig
from ecgaudit.pipeline._compare import compare_predictions
from ecgaudit.policy import Comparison, GateResult, Policy, Rule, evaluate
from ecgaudit.result import AuditResult, to_jsonable
from ecgaudit.schema import OVERALL_ATTRIBUTE

__all__ = ["before_after_gate", "default_policy", "summarize_before_after"]

DEFAULT_POLICY_NAME = "no-group-worse"


def default_policy(config: FinetuneConfig) -> Policy:
    """Return the default "no group worse by more than delta" policy of a fine-tuning run.

    Parameters
    ----------
    config : FinetuneConfig
        Its ``gate`` section sets the metric, delta, judge, attributes and how an
        inconclusive outcome is treated.

    Returns
    -------
    Policy
    """
    g = config.gate
    metric = config.gate_metric
    rule = Rule(
        id=f"no-group-worse-{metric}",
        description=(f"after fine-tuning, no group's {metric} is worse than before by more "
                     f"than {g.max_worsening:g}"),
        metric=metric, max_worsening=g.max_worsening, judge=g.judge, attributes=g.attributes,
    )
    return Policy(name=DEFAULT_POLICY_NAME, on_inconclusive=g.on_inconclusive, rules=(rule,))


def before_after_gate(
    before: pd.DataFrame,
    after: pd.DataFrame,
    after_result: AuditResult,
    audit_config: AuditConfig,
    policy: Policy,
    *,
    n_boot: int = 500,
    seed: int = 0,
) -> tuple[Comparison, GateResult]:
    """Compare the two models on the same held-out ECGs (paired) and apply the policy.

    Parameters
    ----------
    before, after : pandas.DataFrame
        Predictions of the base and adapted models on the same rows (labels, scores, ids,
        demographics), with the columns ``audit_config`` names.
    after_result : AuditResult
        The adapted model's audit (value rules of a custom policy are judged on it).
    audit_config : AuditConfig
        The audit config used for both audits.
    policy : Policy
        Usually :func:`default_policy`; change rules are judged on the comparison.
    n_boot : int
        Bootstrap replicates for the paired non-AUROC changes.
    seed : int
        Bootstrap seed.

    Returns
    -------
    (Comparison, GateResult)
    """
    comparison = compare_predictions(before, after, audit_config, n_boot=n_boot, seed=seed)
    gate = evaluate(after_result, policy, comparison.table)
    return comparison, gate


def _metric_row(result: AuditResult, task: str, attribute: str, group: str,
                metric: str) -> dict[str, Any]:
    m = result.metrics
    sel = m[(m["task"] == task) & (m["attribute"] == attribute) & (m["group"] == group)
            & (m["metric"] == metric)]
    if not len(sel):
        return {"estimate": None, "ci_low": None, "ci_high": None, "status": "absent"}
    r = sel.iloc[0]
    return to_jsonable({"estimate": r["estimate"], "ci_low": r["ci_low"],
                        "ci_high": r["ci_high"], "status": r["status"], "n": r["n"],
                        "n_pos": r["n_pos"]})


def summarize_before_after(
    before: AuditResult,
    after: AuditResult,
    comparison: Comparison,
    metric: str = "auroc",
) -> dict[str, Any]:
    """Summarise before -> after per task (overall) and per group, for one metric.

    Parameters
    ----------
    before, after : AuditResult
        The two audits of the held-out site patients.
    comparison : Comparison
        The paired comparison.
    metric : str
        The metric summarised.

    Returns
    -------
    dict
        ``{"metric", "overall": [{task, before{estimate, ci_low, ci_high}, after{...},
        change, change_ci_low, change_ci_high, ci_method}], "groups": [{task, attribute,
        group, n, change, change_ci_low, change_ci_high, status}]}`` (suppressed groups
        carry no numbers).
    """
    t = comparison.table
    t = t[t["metric"] == metric]
    overall, groups = [], []
    for r in t.to_dict("records"):
        change = {k: r[k] for k in ("change", "change_ci_low", "change_ci_high", "ci_method",
                                    "status", "reason")}
        if r["attribute"] == OVERALL_ATTRIBUTE:
            overall.append({
                "task": r["task"],
                "before": _metric_row(before, r["task"], r["attribute"], r["group"], metric),
                "after": _metric_row(after, r["task"], r["attribute"], r["group"], metric),
                **change,
            })
        else:
            groups.append({"task": r["task"], "attribute": r["attribute"], "group": r["group"],
                           "n": r["n"], **change})
    return to_jsonable({"metric": metric, "overall": overall, "groups": groups})
