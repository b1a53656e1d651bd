"""Terminal summary of the continuous tasks of an audit result (bias and MAE)."""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console
from rich.table import Table

from ecgaudit.result import AuditResult
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE


def _fmt(row: pd.Series | None) -> str:
    if row is None or not math.isfinite(row.estimate):
        return "-"
    if math.isfinite(row.ci_low) and math.isfinite(row.ci_high):
        return f"{row.estimate:.3g} ({row.ci_low:.3g} to {row.ci_high:.3g})"
    return f"{row.estimate:.3g}"


def print_continuous_summary(result: AuditResult, console: Console) -> None:
    """Print overall bias and MAE per continuous task and the group with the largest bias.

    Parameters
    ----------
    result : AuditResult
        The audit result (tasks without a ``bias`` metric are skipped).
    console : rich.console.Console
        Where to print.
    """
    m, d = result.metrics, result.disparities
    tasks = list(dict.fromkeys(m.loc[m.metric == "bias", "task"]))
    if not tasks:
        return
    table = Table(title="continuous tasks (predicted - measured, 95% CI)")
    for col in ("task", "n", "bias", "MAE", "largest |bias|", "disparities p_holm<0.05"):
        table.add_column(col)
    for task in tasks:
        mt = m[m.task == task]
        overall = mt[mt.attribute == OVERALL_ATTRIBUTE].set_index("metric")
        groups = mt[(mt.metric == "bias") & (mt.attribute != OVERALL_ATTRIBUTE)
                    & ~mt.attribute.str.contains(INTERSECTION_SEP, regex=False)
                    & mt.status.isin(["ok", "unstable"])]
        worst = "-"
        if len(groups):
            w = groups.loc[groups.estimate.abs().idxmax()]
            worst = f"{w.attribute}={w.group}: {_fmt(w)}"
        flagged = int((d[d.task == task].p_holm < 0.05).sum())
        table.add_row(str(task), str(overall.loc["bias", "n"]), _fmt(overall.loc["bias"]),
                      _fmt(overall.loc["mae"]), worst, str(flagged))
    console.print(table)
