"""A one-screen terminal summary of an audit result (rules from :mod:`ecgaudit.headline`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ecgaudit._text import visible
from ecgaudit.cli._contsummary import print_continuous_summary
from ecgaudit.headline import select_findings, task_verdict, worse_than_chance, worst_group
from ecgaudit.registry import get_metric
from ecgaudit.result import AuditResult


def _safe(text: str) -> str:
    """Return a name as visible, markup-free terminal text (escape sequences shown)."""
    return escape(visible(text, keep_newlines=False))


def _fmt(est: float | None, lo: float | None, hi: float | None) -> str:
    if est is None or not math.isfinite(est):
        return "-"
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
        return f"{est:.3f} ({lo:.3f}-{hi:.3f})"
    return f"{est:.3f}"


def _suppressed_groups(records: list[dict[str, Any]], task: str) -> int:
    """Count the groups of ``task`` whose every row is withheld."""
    seen: dict[tuple[str, str], bool] = {}
    for r in records:
        if r["task"] == task:
            key = (str(r["attribute"]), str(r["group"]))
            seen[key] = seen.get(key, True) and r.get("status") == "suppressed"
    return sum(seen.values())


def print_summary(result: AuditResult, console: Console | None = None) -> None:
    """Print overall and worst-group AUROC per task and the number of Holm findings.

    The worst group is chosen among every published group (intersections and unstable
    groups too, flagged ``*``); every group with an AUROC below 0.5 is named below.

    Parameters
    ----------
    result : AuditResult
        The audit result.
    console : rich.console.Console, optional
        Where to print (standard output by default).
    """
    console = console or Console(highlight=False, width=120)
    data = result.to_dict()
    records, disp = data["metrics"], data["disparities"]
    has_auroc = any(r["metric"] == "auroc" for r in records)
    head = "auroc" if has_auroc or not records else "harrell_c"  # survival: C-index
    label = get_metric(head, "binary" if head == "auroc" else "survival").short_label
    table = Table(title=f"ecgaudit summary ({label}, 95% CI; * unstable: few events)")
    for col in ("task", "n", "overall", "worst group", f"worst {label}",
                "Holm findings (harms)", "suppressed groups"):
        table.add_column(col)
    notes = []
    for task in dict.fromkeys(str(r["task"]) for r in records):
        overall = next((r for r in records if r["task"] == task and r["metric"] == head
                        and r["attribute"] == "overall"), None)
        if overall is None:  # a continuous task: print_continuous_summary
            continue
        w = worst_group(records, task, metric=head)
        name = (_safe(f"{w.attribute}={w.group}") + (" *" if w.unstable else "")) if w else "-"
        worst_txt = _fmt(w.estimate, w.ci_low, w.ci_high) if w else "-"
        confirmed, _ = select_findings([d for d in disp if d["task"] == task],
                                       [r for r in records if r["task"] == task])
        harms = sum(f.kind != "better" for f in confirmed)
        table.add_row(_safe(task), str(overall["n"]),
                      _fmt(overall["estimate"], overall["ci_low"], overall["ci_high"]),
                      name, worst_txt, f"{len(confirmed)} ({harms})",
                      str(_suppressed_groups(records, task)))
        for r in worse_than_chance(records, task):
            flag = " (unstable: few events)" if r.get("status") == "unstable" else ""
            notes.append(f"{_safe(task)}: AUROC below chance in "
                         f"{_safe(str(r['attribute']) + '=' + str(r['group']))}: "
                         f"{_fmt(r['estimate'], r['ci_low'], r['ci_high'])}{flag}")
    if table.row_count or not records:
        console.print(table)
    for line in notes:
        console.print(f"warning: {line}")
    print_continuous_summary(result, console)


def print_verdicts(result: AuditResult, gate: Mapping[str, Any] | None = None,
                   console: Console | None = None) -> None:
    """Print the plain-language verdict of every task (the report's rule).

    Parameters
    ----------
    result : AuditResult
        The audit result.
    gate : mapping, optional
        ``GateResult.to_dict()`` when a policy was judged.
    console : rich.console.Console, optional
        Where to print.
    """
    console = console or Console(highlight=False, width=120)
    data = result.to_dict()
    power = data["extras"].get("power") or []
    for task in dict.fromkeys(str(r["task"]) for r in data["metrics"]
                              if r["metric"] == "auroc"):
        v = task_verdict(task, data["metrics"], data["disparities"], power, gate)
        console.print(f"verdict {_safe(task)}: {_safe(v['text'])}")
