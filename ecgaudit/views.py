"""Wide views of the tidy result tables, in the style of fairlearn's ``MetricFrame``.

The tidy tables (``result.metrics``, ``result.disparities``) have one row per task x
attribute x group x metric. These views pivot one metric into a table with one row per
group and the estimate with its interval as columns (one column block per task), and give
the short text and notebook (HTML) summaries of a result. They only rearrange numbers the
audit computed; suppressed and insufficient cells stay empty with their status.
"""

from __future__ import annotations

import difflib
import html
import math
from collections.abc import Mapping
from typing import Any, Literal

import pandas as pd

from ecgaudit.errors import InputError
from ecgaudit.schema import INTERSECTION_SEP, METRICS, OVERALL_ATTRIBUTE, RANKING_METRICS

__all__ = ["by_group", "disparity_table", "summary_html", "summary_text"]

_KEY = ["attribute", "group"]


def _check_metric(metric: str, available: pd.Series) -> None:
    if metric in set(available):
        return
    names = sorted(set(available) | set(METRICS)) or [*METRICS, *RANKING_METRICS]
    close = difflib.get_close_matches(metric, names, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else f" Choose one of: {', '.join(names)}."
    raise InputError(f"unknown metric '{metric}'.{hint}")


def _tasks(frame: pd.DataFrame, task: str | None) -> list[str]:
    tasks = [str(t) for t in dict.fromkeys(frame["task"])]
    if task is None:
        return tasks
    if task not in tasks:
        raise InputError(f"unknown task '{task}'; the audit has: {', '.join(tasks)}")
    return [task]


def _wide(sub: pd.DataFrame, tasks: list[str], fields: list[str], single: bool
          ) -> pd.DataFrame:
    order = list(dict.fromkeys(zip(sub["attribute"], sub["group"])))
    index = pd.MultiIndex.from_tuples(order, names=_KEY)
    blocks = {}
    for task in tasks:
        part = sub[sub["task"] == task].set_index(_KEY)[fields]
        blocks[task] = part[~part.index.duplicated()].reindex(index)
    if single:
        return blocks[tasks[0]]
    return pd.concat(blocks, axis=1, names=["task", None])


def by_group(metrics: pd.DataFrame, metric: str, task: str | None = None, *,
             intersections: bool = True) -> pd.DataFrame:
    """Pivot one metric into a wide table: one row per (attribute, group).

    Parameters
    ----------
    metrics : pandas.DataFrame
        ``AuditResult.metrics``.
    metric : str
        Metric identifier, e.g. ``"auroc"``.
    task : str, optional
        One task: columns ``estimate, ci_low, ci_high, n, n_pos, status``. Without it every
        task gets a column block ``(task, estimate | ci_low | ci_high | status)``.
    intersections : bool
        Keep the intersection groups (``age & sex``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(attribute, group)`` in the audit's order (overall first).

    Raises
    ------
    InputError
        For an unknown metric or task (with the closest valid name).
    """
    _check_metric(metric, metrics["metric"])
    tasks = _tasks(metrics, task)
    sub = metrics[metrics["metric"] == metric]
    if not intersections:
        sub = sub[~sub["attribute"].astype(str).str.contains(INTERSECTION_SEP, regex=False)]
    fields = (["estimate", "ci_low", "ci_high", "n", "n_pos", "status"] if task is not None
              else ["estimate", "ci_low", "ci_high", "status"])
    return _wide(sub, tasks, fields, single=task is not None)


def disparity_table(disparities: pd.DataFrame, metric: str,
                    kind: Literal["difference", "ratio"] = "difference",
                    task: str | None = None) -> pd.DataFrame:
    """Each group against its attribute's reference group, as a wide table.

    Parameters
    ----------
    disparities : pandas.DataFrame
        ``AuditResult.disparities``.
    metric : str
        Metric identifier.
    kind : {"difference", "ratio"}
        ``difference`` = group - reference, ``ratio`` = group / reference.
    task : str, optional
        One task (columns ``reference, <kind>, ci_low, ci_high, p_value, p_holm, p_bh,
        status``), or every task as column blocks.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(attribute, group)``.

    Raises
    ------
    InputError
        For an unknown metric, kind or task.
    """
    if kind not in ("difference", "ratio"):
        raise InputError(f"kind must be 'difference' or 'ratio', not {kind!r}")
    _check_metric(metric, disparities["metric"])
    tasks = _tasks(disparities, task)
    sub = disparities[disparities["metric"] == metric].rename(columns={
        f"{kind}_ci_low": "ci_low", f"{kind}_ci_high": "ci_high"})
    fields = ["reference", kind, "ci_low", "ci_high", "p_value", "p_holm", "p_bh", "status"]
    if task is None:
        fields = ["reference", kind, "ci_low", "ci_high", "p_holm", "status"]
    return _wide(sub, tasks, fields, single=task is not None)


def _fmt(x: Any) -> str:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(f) else f"{f:.3f}"


def _task_rows(metrics: pd.DataFrame, disparities: pd.DataFrame) -> list[dict[str, str]]:
    rows = []
    for task in dict.fromkeys(metrics["task"]):
        m = metrics[metrics["task"] == task]
        overall = m[m["attribute"] == OVERALL_ATTRIBUTE].set_index("metric")
        groups = m[(m["attribute"] != OVERALL_ATTRIBUTE)][_KEY].drop_duplicates()
        suppressed = m[m["status"] == "suppressed"][_KEY].drop_duplicates()
        d = disparities[disparities["task"] == task]
        auc = overall.loc["auroc"] if "auroc" in overall.index else None
        rows.append({
            "task": str(task),
            "n": str(auc["n"]) if auc is not None else "–",
            "events": str(auc["n_pos"]) if auc is not None else "–",
            "auroc": (f"{_fmt(auc['estimate'])} [{_fmt(auc['ci_low'])}, {_fmt(auc['ci_high'])}]"
                      if auc is not None else "–"),
            "groups": str(len(groups)), "suppressed": str(len(suppressed)),
            "flagged": str(int((d["p_holm"] < 0.05).sum())),
        })
    return rows


_HEAD = {"task": "task", "n": "n", "events": "events", "auroc": "overall AUROC [95% CI]",
         "groups": "groups", "suppressed": "suppressed", "flagged": "differences p_holm<0.05"}


def summary_text(metrics: pd.DataFrame, disparities: pd.DataFrame,
                 manifest: Mapping[str, Any]) -> str:
    """Return a short one-line-per-task text summary (``repr(result)``)."""
    config = manifest.get("config") or {}
    lines = [f"AuditResult: {metrics['task'].nunique()} task(s), "
             f"{manifest.get('n_ecgs', '?')} ECGs, bootstrap B={config.get('bootstrap', 0)}, "
             f"{len(metrics)} metric rows, {len(disparities)} disparity rows"]
    for r in _task_rows(metrics, disparities):
        lines.append(f"  {r['task']}: n={r['n']}, events={r['events']}, AUROC {r['auroc']}, "
                     f"{r['groups']} groups ({r['suppressed']} suppressed), "
                     f"{r['flagged']} differences p_holm<0.05")
    lines.append("  .metrics / .disparities (tidy), .by_group(metric), "
                 ".disparity_table(metric), .save(dir, report=True)")
    return "\n".join(lines)


def summary_html(metrics: pd.DataFrame, disparities: pd.DataFrame,
                 manifest: Mapping[str, Any]) -> str:
    """Return a compact HTML summary for notebooks (``_repr_html_``); every value escaped."""
    config = manifest.get("config") or {}
    head = "".join(f"<th>{html.escape(v)}</th>" for v in _HEAD.values())
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(r[k])}</td>" for k in _HEAD) + "</tr>"
        for r in _task_rows(metrics, disparities))
    intro = (f"<strong>ecgaudit AuditResult</strong>: {metrics['task'].nunique()} task(s), "
             f"{html.escape(str(manifest.get('n_ecgs', '?')))} ECGs, bootstrap "
             f"B={html.escape(str(config.get('bootstrap', 0)))}")
    return (f'<div class="ecgaudit-result"><p>{intro}</p><table><thead><tr>{head}</tr>'
            f"</thead><tbody>{body}</tbody></table><p><code>result.by_group(\"auroc\")"
            "</code>, <code>result.disparity_table(\"sensitivity\")</code>, "
            "<code>ecgaudit.plotting.plot_forest(result, task)</code>, "
            "<code>result.save(dir, report=True)</code></p></div>")
