"""Evaluate a policy's rules on an audit result (and optionally a baseline comparison)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ecgaudit.errors import ConfigError
from ecgaudit.policy._gate import GateResult, RuleOutcome
from ecgaudit.policy._horizon import horizon_mask, horizon_suffix, labelled, row_horizon
from ecgaudit.policy._judge import (
    UNJUDGEABLE_STATUSES,
    Judgement,
    Outcome,
    combine,
    describe_range,
    fmt,
    gate_on_evidence,
    judge_range,
    weak_evidence,
)
from ecgaudit.policy._schema import HIGHER_IS_BETTER, Policy, Rule, unknown_name_message
from ecgaudit.privacy import min_cell_size_of
from ecgaudit.result import AuditResult
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE

__all__ = ["MSG_CHANGE_NEEDS_BASELINE", "MSG_NO_ROWS", "evaluate"]

MSG_NO_ROWS = "no rows of the result match this rule (check its metric, tasks, attributes, groups)"
MSG_CHANGE_NEEDS_BASELINE = (
    "rule '{rule_id}' compares with a baseline (max_worsening/max_abs_change); run it with "
    "`ecgaudit compare baseline/results.json candidate/results.json --policy ...`"
)


def _num(x: Any) -> float | None:
    if x is None or x is pd.NA:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _ci_level(result: AuditResult) -> float:
    if result.config is not None:
        return float(result.config.ci_level)
    cfg = result.manifest.get("config", {}) if isinstance(result.manifest, dict) else {}
    level = cfg.get("ci_level", 0.95) if isinstance(cfg, dict) else 0.95
    return float(level) if isinstance(level, (int, float)) else 0.95


def _min_cell(result: AuditResult) -> int:
    return min_cell_size_of(result)


def _scope(frame: pd.DataFrame, rule: Rule, *, overall: bool) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if rule.metric is not None and "metric" in frame.columns:
        keep &= frame["metric"] == rule.metric
    if rule.tasks is not None:
        keep &= frame["task"].isin(list(rule.tasks))
    if rule.horizon is not None and "horizon" in frame.columns:
        keep &= horizon_mask(frame["horizon"], rule.horizon)
    if rule.attributes is not None:
        keep &= frame["attribute"].isin(list(rule.attributes))
    elif not overall:
        keep &= frame["attribute"] != OVERALL_ATTRIBUTE
    if rule.groups is not None:
        keep &= frame["group"].isin(list(rule.groups)) | (
            frame["attribute"] == OVERALL_ATTRIBUTE
        )
    if rule.exclude_groups:
        drop = set(rule.exclude_groups)
        keep &= ~frame["group"].map(
            lambda g: bool(drop.intersection(str(g).split(INTERSECTION_SEP)))
        ).astype(bool)
    return frame.loc[keep]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [dict(zip(frame.columns, row)) for row in frame.itertuples(index=False)]


def _status_judgement(row: dict[str, Any], value_col: str) -> Judgement | None:
    status = str(row.get("status") or "ok")
    if status in UNJUDGEABLE_STATUSES:
        reason = row.get("reason")
        why = f": {reason}" if isinstance(reason, str) and reason else ""
        return Judgement(
            "inconclusive", _num(row.get(value_col)), None, None,
            f"group is {status}{why}; the rule cannot be judged here",
        )
    return None


def _on_evidence(j: Judgement, row: dict[str, Any], low: float, high: float,
                 label: str, paired: bool = False) -> Judgement:
    """Apply :func:`gate_on_evidence` with the row's status, reason and interval method.

    A paired change (``paired=True``) of identical predictions is exactly 0 with a
    zero-width interval, which is evidence, so only unstable / fallback rows are weak there.
    """
    problems = weak_evidence(j.value, j.ci_low, j.ci_high, status=row.get("status"),
                             reason=row.get("reason"), ci_method=row.get("ci_method"))
    if paired:
        problems = [p for p in problems if "zero width" not in p
                    and "no confidence interval" not in p]
    return gate_on_evidence(j, problems, low, high, label)


class _Evaluator:
    def __init__(self, result: AuditResult, comparison: pd.DataFrame | None) -> None:
        self.result = result
        self.comparison = comparison
        self.level = _ci_level(result)

    def outcome(self, rid: str, rule: Rule, row: dict[str, Any] | None, j: Judgement,
                **where: Any) -> RuleOutcome:
        src = row or {}
        return RuleOutcome(
            rule_id=rid,
            description=rule.description or _describe(rule) + horizon_suffix(rule.horizon),
            kind=rule.kind,
            task=where.get("task", src.get("task")),
            attribute=where.get("attribute", src.get("attribute")),
            group=where.get("group", src.get("group")),
            metric=rule.metric,
            horizon=row_horizon(src),
            outcome=j.outcome,
            value=j.value,
            ci_low=j.ci_low,
            ci_high=j.ci_high,
            detail=j.detail,
            required=rule.required,
        )

    def no_rows(self, rid: str, rule: Rule) -> list[RuleOutcome]:
        j = Judgement("inconclusive", None, None, None, MSG_NO_ROWS)
        return [self.outcome(rid, rule, None, j, task=None, attribute=None, group=None)]

    # -- value rules -------------------------------------------------------------------
    def value(self, rid: str, rule: Rule) -> list[RuleOutcome]:
        rows = _records(_scope(self.result.metrics, rule, overall=not rule.worst_group))
        if not rows:
            return self.no_rows(rid, rule)
        low, high = rule.bounds()
        judged = []
        for row in rows:
            label = labelled(rule.metric, row_horizon(row))
            j = _status_judgement(row, "estimate") or _on_evidence(
                judge_range(row["estimate"], row["ci_low"], row["ci_high"], rule.judge,
                            low, high, label=label),
                row, low, high, label,
            )
            judged.append((row, j))
        if not rule.worst_group:
            return [self.outcome(rid, rule, row, j) for row, j in judged]
        out = []
        keys = dict.fromkeys((r["task"], r["attribute"], row_horizon(r)) for r, _ in judged)
        for key in keys:  # one worst group per task x attribute (x horizon)
            part = [(r, j) for r, j in judged
                    if (r["task"], r["attribute"], row_horizon(r)) == key]
            verdict = combine([j.outcome for _, j in part])
            worst_row, worst_j = _worst(part, low, high, verdict)
            counts = {k: sum(j.outcome == k for _, j in part) for k in
                      ("pass", "fail", "inconclusive")}
            detail = (
                f"worst group '{worst_row['group']}': {worst_j.detail} "
                f"[{len(part)} groups: {counts['pass']} pass, {counts['fail']} fail, "
                f"{counts['inconclusive']} inconclusive]"
            )
            j = Judgement(verdict, worst_j.value, worst_j.ci_low, worst_j.ci_high, detail)
            out.append(self.outcome(rid, rule, worst_row, j))
        return out

    # -- disparity rules ---------------------------------------------------------------
    def disparity(self, rid: str, rule: Rule) -> list[RuleOutcome]:
        rows = _records(_scope(self.result.disparities, rule, overall=False))
        if not rows:
            return self.no_rows(rid, rule)
        if rule.max_abs_difference is not None:
            d = rule.max_abs_difference
            cols, low, high = "difference", -d, d
        else:
            assert rule.ratio_between is not None
            cols = "ratio"
            low, high = rule.ratio_between
        out = []
        for row in rows:
            label = f"{labelled(rule.metric, row_horizon(row))} {cols}"
            j = _status_judgement(row, cols)
            if j is None:
                j = judge_range(row[cols], row[f"{cols}_ci_low"], row[f"{cols}_ci_high"],
                                rule.judge, low, high, label=label)
                j = Judgement(j.outcome, j.value, j.ci_low, j.ci_high,
                              f"{j.detail} (vs reference '{row.get('reference')}')")
                j = _on_evidence(j, row, low, high, label)
                if rule.equivalence:
                    j = self._tost(j, rule, low, high)
            out.append(self.outcome(rid, rule, row, j))
        return out

    def _tost(self, j: Judgement, rule: Rule, low: float, high: float) -> Judgement:
        alpha = (1.0 - self.level) / 2.0
        margin = describe_range(low, high)
        if rule.judge != "ci":
            return Judgement(j.outcome, j.value, j.ci_low, j.ci_high,
                             f"{j.detail}; equivalence needs judge: ci to be claimed")
        if j.outcome == "pass":
            text = (f"equivalent within margin {margin}: the {self.level:.0%} CI lies inside "
                    f"it (TOST, two one-sided tests each at alpha = {alpha:g}); {j.detail}")
        elif j.outcome == "fail":
            text = f"not equivalent: the disparity lies wholly outside {margin}; {j.detail}"
        else:
            text = (f"equivalence not shown: the {self.level:.0%} CI reaches outside {margin} "
                    f"(absence of evidence is not evidence of equivalence); {j.detail}")
        return Judgement(j.outcome, j.value, j.ci_low, j.ci_high, text)

    # -- coverage rules ----------------------------------------------------------------
    def coverage(self, rid: str, rule: Rule) -> list[RuleOutcome]:
        metrics = self.result.metrics
        scoped = _scope(metrics, rule, overall=True)
        if rule.required_groups is not None:
            keep = pd.Series(False, index=scoped.index)
            for attr, groups in rule.required_groups.items():
                keep |= (scoped["attribute"] == attr) & scoped["group"].isin(list(groups))
            scoped = scoped.loc[keep]
        out = []
        if rule.required_groups is not None:
            tasks = list(rule.tasks) if rule.tasks else list(dict.fromkeys(metrics["task"]))
            for task in tasks:
                for attr, groups in rule.required_groups.items():
                    present = list(dict.fromkeys(
                        metrics.loc[(metrics["task"] == task) & (metrics["attribute"] == attr),
                                    "group"]))
                    for group in groups:
                        if group not in present:
                            msg = (f"required group is absent from the result; "
                                   f"{unknown_name_message('group', group, present)}")
                            j = Judgement("fail", None, None, None, msg)
                            out.append(self.outcome(rid, rule, None, j, task=task,
                                                    attribute=attr, group=group))
        if rule.min_n is None and rule.min_positives is None:
            done = {(o.task, o.attribute, o.group) for o in out}
            for key in dict.fromkeys(zip(scoped["task"], scoped["attribute"], scoped["group"])):
                if key not in done:
                    j = Judgement("pass", None, None, None, "required group is present")
                    out.append(self.outcome(rid, rule, None, j, task=key[0],
                                            attribute=key[1], group=key[2]))
            return out or self.no_rows(rid, rule)
        grouped = scoped.groupby(["task", "attribute", "group"], sort=False, dropna=False)
        for (task, attr, group), part in grouped:
            j = self._count(part, rule)
            out.append(self.outcome(rid, rule, None, j, task=task, attribute=attr, group=group))
        return out or self.no_rows(rid, rule)

    def _count(self, part: pd.DataFrame, rule: Rule) -> Judgement:
        n = pd.to_numeric(part["n"], errors="coerce").max()
        n_pos = pd.to_numeric(part["n_pos"], errors="coerce").max()
        # Only a primary suppression says the group is small; a complementary one hides
        # the count of a group that may be large, so it cannot fail a minimum.
        complementary = part["reason"].astype(str).str.contains(
            "complementary suppression", regex=False)
        suppressed = bool(((part["status"] == "suppressed") & ~complementary).any())
        checks: list[tuple[str, float | None, int]] = []
        if rule.min_n is not None:
            checks.append(("n", _num(n), rule.min_n))
        if rule.min_positives is not None:
            checks.append(("positives", _num(n_pos), rule.min_positives))
        verdicts: list[Outcome] = []
        texts = []
        value: float | None = None
        for name, got, need in checks:
            if value is None and name == "n":
                value = got
            if got is None:
                if suppressed and name == "n" and need >= _min_cell(self.result):
                    verdicts.append("fail")
                    texts.append(f"n is suppressed (fewer than {_min_cell(self.result)} "
                                 f"patients), below the minimum {need}")
                else:
                    verdicts.append("inconclusive")
                    texts.append(f"{name} is not reported (suppressed or missing)")
            elif got >= need:
                verdicts.append("pass")
                texts.append(f"{name} = {int(got)} >= {need}")
            else:
                verdicts.append("fail")
                texts.append(f"{name} = {int(got)} < minimum {need}")
        return Judgement(combine(verdicts), value, None, None, "; ".join(texts))

    # -- change rules (baseline comparison) --------------------------------------------
    def change(self, rid: str, rule: Rule) -> list[RuleOutcome]:
        if self.comparison is None:
            raise ConfigError(MSG_CHANGE_NEEDS_BASELINE.format(rule_id=rid))
        rows = _records(_scope(self.comparison, rule, overall=True))
        if not rows:
            return self.no_rows(rid, rule)
        if rule.max_worsening is not None:
            d = rule.max_worsening
            low, high = (-d, math.inf) if rule.metric in HIGHER_IS_BETTER else (-math.inf, d)
        else:
            assert rule.max_abs_change is not None
            low, high = -rule.max_abs_change, rule.max_abs_change
        out = []
        for row in rows:
            label = f"{labelled(rule.metric, row_horizon(row))} change (candidate - baseline)"
            j = _status_judgement(row, "change") or _on_evidence(judge_range(
                row["change"], row["change_ci_low"], row["change_ci_high"], rule.judge,
                low, high, label=label,
            ), row, low, high, label, paired=True)
            method = row.get("ci_method")
            if isinstance(method, str) and method:
                j = Judgement(j.outcome, j.value, j.ci_low, j.ci_high, f"{j.detail} [{method}]")
            out.append(self.outcome(rid, rule, row, j))
        return out


def _worst(part: list[tuple[dict[str, Any], Judgement]], low: float, high: float,
           verdict: Outcome) -> tuple[dict[str, Any], Judgement]:
    candidates = [(r, j) for r, j in part if j.outcome == verdict] or part

    def badness(item: tuple[dict[str, Any], Judgement]) -> float:
        v = item[1].value
        if v is None:
            return -math.inf
        return max(low - v if not math.isinf(low) else -math.inf,
                   v - high if not math.isinf(high) else -math.inf)

    return max(candidates, key=badness)


def _describe(rule: Rule) -> str:
    scope = "every group" if rule.attributes is None else f"groups of {', '.join(rule.attributes)}"
    how = {"point": "point estimate", "ci": "whole CI", "ci_low": "CI lower bound",
           "ci_high": "CI upper bound"}[rule.judge]
    kind = rule.kind
    if kind == "value":
        low, high = rule.bounds()
        what = "worst group's" if rule.worst_group else ""
        return f"{what} {rule.metric} {describe_range(low, high)} in {scope} ({how})".strip()
    if kind == "disparity":
        if rule.max_abs_difference is not None:
            crit = f"|{rule.metric} difference| <= {fmt(rule.max_abs_difference)}"
        else:
            assert rule.ratio_between is not None
            crit = f"{rule.metric} ratio {describe_range(*rule.ratio_between)}"
        eq = ", equivalence (TOST)" if rule.equivalence else ""
        return f"{crit} vs the reference group, {scope} ({how}{eq})"
    if kind == "coverage":
        parts = []
        if rule.min_n is not None:
            parts.append(f"n >= {rule.min_n}")
        if rule.min_positives is not None:
            parts.append(f"positives >= {rule.min_positives}")
        if rule.required_groups is not None:
            groups = "; ".join(f"{a}: {', '.join(g)}" for a, g in rule.required_groups.items())
            parts.append(f"required groups present ({groups})")
        return " and ".join(parts) + ("" if rule.required_groups else f" in {scope}")
    if rule.max_worsening is not None:
        return f"no group's {rule.metric} worse than baseline by more than " \
               f"{fmt(rule.max_worsening)} ({how})"
    return f"|change in {rule.metric}| <= {fmt(rule.max_abs_change)} vs baseline ({how})"


def evaluate(
    result: AuditResult,
    policy: Policy,
    comparison: pd.DataFrame | None = None,
) -> GateResult:
    """Evaluate every rule of ``policy`` on an audit result.

    Parameters
    ----------
    result : AuditResult
        The audit result (for ``compare``: the candidate's).
    policy : Policy
        The validated policy.
    comparison : pandas.DataFrame, optional
        The table of :class:`ecgaudit.policy.Comparison` (candidate vs baseline); needed
        by change rules (``max_worsening`` / ``max_abs_change``).

    Returns
    -------
    GateResult
        One outcome per rule x task x group. A rule matching no rows is ``inconclusive``.

    Raises
    ------
    ConfigError
        If the policy has change rules but no comparison is given.
    """
    ev = _Evaluator(result, comparison)
    outcomes: list[RuleOutcome] = []
    for rid, rule in zip(policy.rule_ids(), policy.rules):
        outcomes.extend(getattr(ev, rule.kind)(rid, rule))
    mode = "compare" if comparison is not None else "gate"
    return GateResult(policy.name, policy.on_inconclusive, tuple(outcomes), mode=mode)
