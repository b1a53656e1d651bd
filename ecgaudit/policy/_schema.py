"""The fairness-policy file: a pydantic schema, YAML loading and name validation.

A policy is a list of rules. Each rule has exactly one *kind*, chosen by its keys:

=============  =========================================================================
kind           keys
=============  =========================================================================
``value``      ``metric`` + ``min`` / ``max`` / ``between`` / ``max_abs`` (+ ``worst_group``)
``disparity``  ``metric`` + ``max_abs_difference`` or ``ratio_between``
``coverage``   ``min_n`` / ``min_positives`` / ``required_groups``
``change``     ``metric`` + ``max_worsening`` or ``max_abs_change`` (``ecgaudit compare``)
=============  =========================================================================

See ``docs/gating.md`` for the full reference.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from ecgaudit.config import read_yaml
from ecgaudit.errors import ConfigError
from ecgaudit.policy._horizon import horizon_problems
from ecgaudit.registry import directional
from ecgaudit.result import AuditResult
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE, RULE_METRICS

__all__ = [
    "HIGHER_IS_BETTER",
    "LOWER_IS_BETTER",
    "Judge",
    "Policy",
    "Rule",
    "load_policy",
    "parse_policy",
    "unknown_name_message",
]

Judge = Literal["point", "ci", "ci_low", "ci_high"]

#: Metrics where a larger value is better (used by ``max_worsening``).
HIGHER_IS_BETTER: frozenset[str] = directional("higher", ("binary", "survival"))
#: Metrics where a smaller value is better.
LOWER_IS_BETTER: frozenset[str] = directional("lower", ("binary", "survival"))

_VALUE_KEYS = ("min", "max", "between", "max_abs")
#: Metric names a rule may use (binary and continuous outcomes).
_DISPARITY_KEYS = ("max_abs_difference", "ratio_between")
_COVERAGE_KEYS = ("min_n", "min_positives", "required_groups")
_CHANGE_KEYS = ("max_worsening", "max_abs_change")

MSG_NO_CRITERION = (
    "a rule needs one criterion: min/max/between (value), max_abs_difference/ratio_between "
    "(disparity), min_n/min_positives/required_groups (coverage) or "
    "max_worsening/max_abs_change (change vs a baseline)"
)
MSG_MIXED_KINDS = "a rule may have only one kind of criterion; found {keys}. Split it into rules"


def unknown_name_message(kind: str, value: str, valid: Iterable[str]) -> str:
    """Format an "unknown name" message with the closest valid names.

    Parameters
    ----------
    kind : str
        What the name is (``metric``, ``task``, ...).
    value : str
        The name given.
    valid : iterable of str
        The names that exist.

    Returns
    -------
    str
        E.g. ``unknown metric 'aucroc'. Did you mean 'auroc'? Valid: auroc, auprc, ...``.
    """
    names = sorted(dict.fromkeys(str(v) for v in valid))
    close = difflib.get_close_matches(value, names, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    shown = ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")
    return f"unknown {kind} '{value}'.{hint} Valid: {shown}"


class Rule(BaseModel):
    """One rule of a policy (see the module docstring for the kinds)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str | None = None
    description: str | None = None
    metric: str | None = None
    tasks: tuple[str, ...] | None = None
    attributes: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None
    exclude_groups: tuple[str, ...] = ()
    judge: Judge = "ci"
    required: bool = True
    min: float | None = None
    max: float | None = None
    between: tuple[float, float] | None = None
    max_abs: float | None = Field(default=None, ge=0.0)
    worst_group: bool = False
    max_abs_difference: float | None = Field(default=None, ge=0.0)
    ratio_between: tuple[float, float] | None = None
    equivalence: bool = False
    min_n: int | None = Field(default=None, ge=1)
    min_positives: int | None = Field(default=None, ge=1)
    required_groups: dict[str, tuple[str, ...]] | None = None
    max_worsening: float | None = Field(default=None, ge=0.0)
    max_abs_change: float | None = Field(default=None, ge=0.0)
    horizon: tuple[float, ...] | None = None  # survival: judge these horizons only

    @field_validator("horizon", mode="before")
    @classmethod
    def _horizon_list(cls, value: Any) -> Any:
        single = isinstance(value, (int, float, str)) and not isinstance(value, bool)
        return [value] if single else value

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        present = {
            kind: [k for k in keys if getattr(self, k) is not None]
            for kind, keys in (
                ("value", _VALUE_KEYS),
                ("disparity", _DISPARITY_KEYS),
                ("coverage", _COVERAGE_KEYS),
                ("change", _CHANGE_KEYS),
            )
        }
        kinds = [k for k, v in present.items() if v]
        if not kinds:
            raise ValueError(MSG_NO_CRITERION)
        if len(kinds) > 1:
            keys = sorted(k for v in present.values() for k in v)
            raise ValueError(MSG_MIXED_KINDS.format(keys=keys))
        kind = kinds[0]
        if kind == "value" and self.between is not None and (
            self.min is not None or self.max is not None
        ):
            raise ValueError("use either 'between' or 'min'/'max', not both")
        if kind == "value" and self.max_abs is not None and len(present["value"]) > 1:
            raise ValueError("'max_abs' (|value| <= x) cannot be combined with min/max/between")
        if kind == "disparity" and len(present["disparity"]) > 1:
            raise ValueError("use 'max_abs_difference' or 'ratio_between' in separate rules")
        if kind == "change" and len(present["change"]) > 1:
            raise ValueError("use 'max_worsening' or 'max_abs_change' in separate rules")
        for name in ("between", "ratio_between"):
            pair = getattr(self, name)
            if pair is not None and not pair[0] <= pair[1]:
                raise ValueError(f"'{name}' must be [low, high] with low <= high; got {pair}")
        if self.ratio_between is not None and self.ratio_between[0] <= 0:
            raise ValueError("'ratio_between' bounds must be positive")
        if kind != "coverage" and self.metric is None:
            raise ValueError(f"a {kind} rule needs a 'metric'")
        if kind == "coverage" and self.metric is not None:
            raise ValueError(
                "a coverage rule (min_n/min_positives/required_groups) takes no metric"
            )
        if self.horizon is not None and not (self.horizon and all(h > 0 for h in self.horizon)):
            raise ValueError(f"'horizon' must be a positive time or a list of them; got "
                             f"{list(self.horizon)}")
        if self.worst_group and kind != "value":
            raise ValueError("'worst_group' applies to min/max/between rules only")
        if self.equivalence and kind != "disparity":
            raise ValueError("'equivalence' applies to max_abs_difference/ratio_between rules only")
        if self.max_worsening is not None and self.metric is not None and (
            self.metric not in HIGHER_IS_BETTER | LOWER_IS_BETTER
        ):
            raise ValueError(
                f"'max_worsening' needs a metric with a direction "
                f"({sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER)}); for '{self.metric}' use "
                "'max_abs_change'"
            )
        return self

    @property
    def kind(self) -> str:
        """Return the rule kind: ``value``, ``disparity``, ``coverage`` or ``change``."""
        if any(getattr(self, k) is not None for k in _VALUE_KEYS):
            return "value"
        if any(getattr(self, k) is not None for k in _DISPARITY_KEYS):
            return "disparity"
        if any(getattr(self, k) is not None for k in _COVERAGE_KEYS):
            return "coverage"
        return "change"

    def bounds(self) -> tuple[float, float]:
        """Return the accepted interval ``[low, high]`` of a value rule (infinite if open)."""
        if self.between is not None:
            return self.between
        if self.max_abs is not None:
            return -self.max_abs, self.max_abs
        lo = self.min if self.min is not None else float("-inf")
        hi = self.max if self.max is not None else float("inf")
        return lo, hi

    def default_id(self, index: int) -> str:
        """Return the rule id: the given ``id`` or ``r<index>-<metric>-<criterion>``."""
        if self.id:
            return self.id
        keys = [
            k for k in (*_VALUE_KEYS, *_DISPARITY_KEYS, *_COVERAGE_KEYS, *_CHANGE_KEYS)
            if getattr(self, k) is not None
        ]
        crit = "_".join(keys)
        if self.worst_group:
            crit = f"worst_{crit}"
        stem = f"{self.metric}-{crit}" if self.metric else crit
        return f"r{index}-{stem}"


class Policy(BaseModel):
    """A fairness policy: rules plus how inconclusive outcomes are treated.

    ``on_inconclusive="fail"`` makes a required inconclusive rule exit with code 3;
    ``"warn"`` reports it as a warning and exits 0.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = "policy"
    description: str | None = None
    on_inconclusive: Literal["fail", "warn"] = "fail"
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Policy:
        ids = self.rule_ids()
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"rule ids must be unique; repeated: {dup}")
        return self

    def rule_ids(self) -> list[str]:
        """Return every rule's id, in order."""
        return [r.default_id(i + 1) for i, r in enumerate(self.rules)]

    def has_change_rules(self) -> bool:
        """Return True when a rule needs a baseline (``max_worsening``/``max_abs_change``)."""
        return any(r.kind == "change" for r in self.rules)


def _format_errors(err: PydanticValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = str(e["msg"]).removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            valid = Rule.model_fields if "rules" in map(str, e["loc"]) else Policy.model_fields
            msg = unknown_name_message("key", key, valid)
        lines.append(f"  - {loc}: {msg}")
    return f"{source}: invalid policy:\n" + "\n".join(lines)


def _check_names(policy: Policy, result: AuditResult | None, source: str) -> None:
    problems: list[str] = []
    ids = policy.rule_ids()
    metrics = result.metrics if result is not None else None
    tasks = sorted(set(metrics["task"])) if metrics is not None else None
    attrs = sorted(set(metrics["attribute"])) if metrics is not None else None
    for rule_id, rule in zip(ids, policy.rules):
        where = f"rule '{rule_id}'"
        if rule.metric is not None and rule.metric not in RULE_METRICS:
            problems.append(
                f"{where}: {unknown_name_message('metric', rule.metric, RULE_METRICS)}")
        if rule.horizon is not None:
            scoped = None if metrics is None else metrics.loc[
                (metrics["metric"] == rule.metric)
                & (metrics["task"].isin(list(rule.tasks)) if rule.tasks else True)]
            problems += [f"{where}: {p}" for p in horizon_problems(
                rule.metric, rule.horizon, scoped)]
        if metrics is None or tasks is None or attrs is None:
            continue
        for task in rule.tasks or ():
            if task not in tasks:
                problems.append(f"{where}: {unknown_name_message('task', task, tasks)}")
        named = list(rule.attributes or ())
        named += list((rule.required_groups or {}).keys())
        for attr in named:
            if attr not in attrs:
                problems.append(f"{where}: {unknown_name_message('attribute', attr, attrs)}")
        if rule.groups or rule.exclude_groups:
            scope = rule.attributes or [a for a in attrs if a != OVERALL_ATTRIBUTE]
            in_scope = metrics["attribute"].isin(list(scope))
            valid_groups = sorted(set(metrics.loc[in_scope, "group"]))
            parts = sorted({p for g in valid_groups for p in split_intersection(g)})
            for group in rule.groups or ():
                if group not in valid_groups:
                    problems.append(
                        f"{where}: {unknown_name_message('group', group, valid_groups)}"
                    )
            for group in rule.exclude_groups:
                if group not in parts:
                    problems.append(f"{where}: {unknown_name_message('group', group, parts)}")
    if problems:
        raise ConfigError(f"{source}: invalid policy:\n" + "\n".join(f"  - {p}" for p in problems))


def parse_policy(
    data: Any, result: AuditResult | None = None, source: str = "policy"
) -> Policy:
    """Validate a policy given as plain data (e.g. parsed YAML).

    Parameters
    ----------
    data : mapping
        The policy content (a mapping with a ``rules`` list).
    result : AuditResult, optional
        When given, task, attribute and group names are checked against it.
    source : str
        Name used in error messages.

    Returns
    -------
    Policy

    Raises
    ------
    ConfigError
        If the policy is invalid; every problem is listed, unknown names with the closest
        valid names.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a policy must be a mapping with a 'rules' list")
    try:
        policy = Policy.model_validate(data)
    except PydanticValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None
    _check_names(policy, result, source)
    return policy


def load_policy(path: str | Path, result: AuditResult | None = None) -> Policy:
    """Read and validate a YAML policy file.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    result : AuditResult, optional
        When given, names in the policy are checked against this result.

    Returns
    -------
    Policy

    Raises
    ------
    ConfigError
        If the file is missing, not YAML, or not a valid policy.
    """
    p = Path(path)
    data = read_yaml(p, "policy file")
    return parse_policy(data, result=result, source=p.name)


def split_intersection(attribute: str) -> list[str]:
    """Split an intersection attribute name ``"age & sex"`` into its parts."""
    return attribute.split(INTERSECTION_SEP)
