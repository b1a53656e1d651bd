"""The gate result: outcomes per rule x task x group, exit code, gate.json and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from ecgaudit._text import xml_safe
from ecgaudit.policy._horizon import labelled
from ecgaudit.policy._judge import Outcome
from ecgaudit.result import to_jsonable

__all__ = ["EXIT_FAIL", "EXIT_INCONCLUSIVE", "EXIT_PASS", "GateResult", "RuleOutcome"]

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_INCONCLUSIVE = 3


@dataclass(frozen=True)
class RuleOutcome:
    """The outcome of one rule on one task x attribute x group (one JUnit testcase).

    ``horizon`` is the horizon of a survival row (``None`` for rows without one); it is
    named in :attr:`where` as ``metric@horizon`` (e.g. ``td_auroc@365``).
    """

    rule_id: str
    description: str
    kind: str
    task: str | None
    attribute: str | None
    group: str | None
    metric: str | None
    outcome: Outcome
    value: float | None
    ci_low: float | None
    ci_high: float | None
    detail: str
    required: bool
    horizon: float | None = None

    def to_dict(self, with_horizon: bool = False) -> dict[str, Any]:
        """Return the ``gate.json`` entry of this outcome.

        It has a ``horizon`` key when the outcome has a horizon or ``with_horizon`` is set
        (a gate with survival outcomes gives every entry the key; binary-only gates none).
        """
        extra = {"horizon": self.horizon} if with_horizon or self.horizon is not None else {}
        return to_jsonable(
            {
                **extra,
                "rule_id": self.rule_id,
                "description": self.description,
                "task": self.task,
                "attribute": self.attribute,
                "group": self.group,
                "metric": self.metric,
                "outcome": self.outcome,
                "value": self.value,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "detail": self.detail,
                "required": self.required,
            }
        )

    @property
    def where(self) -> str:
        """Return ``task | attribute=group`` (the parts that are set).

        A survival row adds its metric and horizon: ``task | attribute=group | td_auroc@365``.
        """
        parts = []
        if self.task is not None:
            parts.append(self.task)
        if self.attribute is not None:
            parts.append(f"{self.attribute}={self.group}" if self.group else self.attribute)
        if self.horizon is not None:
            parts.append(labelled(self.metric, self.horizon))
        return " | ".join(parts) or "all"


@dataclass(frozen=True)
class GateResult:
    """The result of evaluating a policy.

    Attributes
    ----------
    policy_name : str
        The policy's ``name``.
    on_inconclusive : {"fail", "warn"}
        How required inconclusive outcomes are treated.
    outcomes : tuple of RuleOutcome
        One per rule x task x group, in policy order.
    mode : {"gate", "compare"}
        Whether a single result or a baseline comparison was judged.
    """

    policy_name: str
    on_inconclusive: str
    outcomes: tuple[RuleOutcome, ...]
    mode: str = "gate"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def blocking_failures(self) -> list[RuleOutcome]:
        """Return the failed outcomes of required rules."""
        return [o for o in self.outcomes if o.required and o.outcome == "fail"]

    @property
    def blocking_inconclusive(self) -> list[RuleOutcome]:
        """Return the inconclusive outcomes of required rules."""
        return [o for o in self.outcomes if o.required and o.outcome == "inconclusive"]

    @property
    def status(self) -> str:
        """Return ``fail`` (a required rule fails), ``inconclusive`` or ``pass``."""
        if self.blocking_failures:
            return "fail"
        if self.blocking_inconclusive:
            return "inconclusive"
        return "pass"

    @property
    def exit_code(self) -> int:
        """Return 0 (pass), 1 (a required rule fails) or 3 (required rule inconclusive).

        With ``on_inconclusive: warn`` a required inconclusive outcome gives 0 and a
        warning instead of 3.
        """
        if self.blocking_failures:
            return EXIT_FAIL
        if self.blocking_inconclusive and self.on_inconclusive == "fail":
            return EXIT_INCONCLUSIVE
        return EXIT_PASS

    @property
    def summary(self) -> dict[str, int]:
        """Return the number of outcomes by kind: ``{"pass": n, "fail": n, "inconclusive": n}``."""
        counts = {"pass": 0, "fail": 0, "inconclusive": 0}
        for o in self.outcomes:
            counts[o.outcome] += 1
        return counts

    @property
    def warnings(self) -> list[str]:
        """Return warnings: failures of optional rules, and inconclusive ones when warned."""
        out = [
            f"optional rule '{o.rule_id}' failed on {o.where}: {o.detail}"
            for o in self.outcomes
            if not o.required and o.outcome == "fail"
        ]
        if self.on_inconclusive == "warn":
            out += [
                f"required rule '{o.rule_id}' is inconclusive on {o.where}: {o.detail}"
                for o in self.blocking_inconclusive
            ]
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return the content of ``gate.json`` (see ``docs/gating.md`` for the shape)."""
        survival = any(o.horizon is not None for o in self.outcomes)
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "policy": self.policy_name,
            "mode": self.mode,
            "on_inconclusive": self.on_inconclusive,
            "summary": self.summary,
            "notes": list(self.notes),
            "rules": [o.to_dict(with_horizon=survival) for o in self.outcomes],
        }

    def to_json(self) -> str:
        """Serialise ``to_dict()`` deterministically (sorted keys, trailing newline)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1, allow_nan=False) + "\n"

    def to_junit_xml(self) -> str:
        """Return JUnit XML: one ``<testsuite>`` per rule, one ``<testcase>`` per outcome.

        A failed required rule is a ``<failure>``; a required inconclusive rule is an
        ``<error type="inconclusive">`` when it blocks the gate (``on_inconclusive: fail``),
        otherwise ``<skipped>``; a failed optional rule is ``<skipped>`` with an
        ``advisory`` message. So the XML shows red exactly when the exit code is non-zero.
        """
        suites: dict[str, list[RuleOutcome]] = {}
        for o in self.outcomes:
            suites.setdefault(o.rule_id, []).append(o)
        root = ET.Element("testsuites", {"name": f"ecgaudit {self.mode}: {self.policy_name}"})
        totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for rule_id, items in suites.items():
            suite = ET.SubElement(root, "testsuite", {"name": rule_id})
            counts = {"tests": len(items), "failures": 0, "errors": 0, "skipped": 0}
            props = ET.SubElement(suite, "properties")
            ET.SubElement(props, "property", {"name": "description",
                                              "value": items[0].description})
            ET.SubElement(props, "property", {"name": "kind", "value": items[0].kind})
            ET.SubElement(props, "property", {"name": "required",
                                              "value": str(items[0].required).lower()})
            for o in items:
                case = ET.SubElement(suite, "testcase", {
                    "classname": f"ecgaudit.{self.mode}.{rule_id}",
                    "name": o.where,
                    "time": "0",
                })
                tag, typ, message = self._junit_child(o)
                if tag is not None:
                    key = {"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]
                    counts[key] += 1
                    child = ET.SubElement(case, tag, {"type": typ, "message": message})
                    if tag != "skipped":
                        child.text = o.detail
                else:
                    ET.SubElement(case, "system-out").text = o.detail
            for k, v in counts.items():
                suite.set(k, str(v))
                totals[k] += v
            suite.set("time", "0")
        for k, v in totals.items():
            root.set(k, str(v))
        root.set("time", "0")
        ET.indent(root, space="  ")
        body = xml_safe(ET.tostring(root, encoding="unicode"))  # e.g. ESC in a group name
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"

    def _junit_child(self, o: RuleOutcome) -> tuple[str | None, str, str]:
        if o.outcome == "pass":
            return None, "", ""
        if o.outcome == "fail":
            if o.required:
                return "failure", "policy-fail", o.detail
            return "skipped", "advisory", f"advisory (required: false) rule failed: {o.detail}"
        if o.required and self.on_inconclusive == "fail":
            return "error", "inconclusive", o.detail
        return "skipped", "inconclusive", f"inconclusive: {o.detail}"
