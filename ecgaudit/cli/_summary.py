"""A one-screen terminal summary of an audit result."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ecgaudit._text import visible
from ecgaudit.result import AuditResult


def _fmt(est: float, lo: float, hi: float) -> str:
    if not math.isfinite(est):
        return "-"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{est:.3f} ({lo:.3f}-{hi:.3f})"
    return f"{est:.3f}"


def print_summary(result: AuditResult, console: Console | None = None) -> None:
    """Print overall and worst-group AUROC per task and the number of flagged disparities.

    Parameters
    ----------
    result : AuditResult
        The audit result.
    console : rich.console.Console, optional
        Where to print (standard output by default).
    """
    console = console or Console(highlight=False, width=120)
    m = result.metrics
    d = result.disparities
    table = Table(title="ecgaudit summary (AUROC, 95% CI)")
    for col in ("task", "n", "overall", "worst group", "worst AUROC",
                "disparities p_holm<0.05", "suppressed groups"):
        table.add_column(col)
    for task in dict.fromkeys(m["task"]):
        mt = m[(m.task == task) & (m.metric == "auroc")]
        overall = mt[mt.attribute == "overall"].iloc[0]
        groups = mt[(mt.attribute != "overall") & ~mt.attribute.str.contains(" & ", regex=False)
                    & mt.status.isin(["ok", "unstable"])]
        if len(groups):
            worst = groups.loc[groups.estimate.idxmin()]
            worst_name = escape(visible(f"{worst.attribute}={worst.group}", keep_newlines=False))
            worst_txt = _fmt(worst.estimate, worst.ci_low, worst.ci_high)
        else:
            worst_name, worst_txt = "-", "-"
        dt = d[d.task == task]
        flagged = int((dt.p_holm < 0.05).sum())
        suppressed = int(mt.loc[mt.status.eq("suppressed"), "group"].nunique())
        table.add_row(escape(visible(task, keep_newlines=False)), str(overall.n),
                      _fmt(overall.estimate, overall.ci_low, overall.ci_high),
                      worst_name, worst_txt, str(flagged), str(suppressed))
    console.print(table)
