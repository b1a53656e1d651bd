"""Report view of continuous tasks, rendered by ``_continuous.html.j2``.

Agreement tables, plain-language findings, forest / Bland-Altman / calibration figures, and
links to the derived cut-point tasks.

Renders only what the audit computed (``metrics``, ``disparities``, ``extras["continuous"]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecgaudit.registry import labels
from ecgaudit.reports import _contfigures as cfigs
from ecgaudit.reports import _figures as figs
from ecgaudit.reports._format import (
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_signed,
    group_phrase,
    is_number,
    slug,
)
from ecgaudit.reports._tables import forest_rows, metric_table
from ecgaudit.schema import CONTINUOUS_METRICS, INTERSECTION_SEP, OVERALL_ATTRIBUTE

__all__ = ["binary_tasks", "continuous_views"]

LABELS = labels("continuous", short=True)
ALPHA = 0.05


def _continuous_names(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(str(r["task"]) for r in records if r["metric"] == "bias"))


def binary_tasks(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the tasks of the binary sections (every task without continuous metrics)."""
    cont = set(_continuous_names(records))
    return [t for t in dict.fromkeys(str(r["task"]) for r in records) if t not in cont]


def _digits(value: float) -> int:
    v = abs(value)
    return 1 if v >= 10 else 2 if v >= 0.1 else 3


def _est(rec: Mapping[str, Any], k: int) -> str:
    ci = fmt_ci(rec.get("ci_low"), rec.get("ci_high"), k)
    return f"{fmt_num(rec['estimate'], k)} [{ci.replace(' to ', ', ')}]" if ci else fmt_num(
        rec["estimate"], k)


def _magnitude(rec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return ("high"/"low", the record with estimate and interval as magnitudes)."""
    est = float(rec["estimate"])
    if est >= 0:
        return "high", dict(rec)
    lo, hi = rec.get("ci_low"), rec.get("ci_high")
    return "low", {**rec, "estimate": -est,
                   "ci_low": -float(hi) if is_number(hi) else None,
                   "ci_high": -float(lo) if is_number(lo) else None}


def _findings(task: str, index: Mapping[tuple, Mapping[str, Any]],
              disp: Sequence[Mapping[str, Any]]) -> list[str]:
    out = []
    bias = index.get((task, OVERALL_ATTRIBUTE, "all", "bias"))
    mae = index.get((task, OVERALL_ATTRIBUTE, "all", "mae"))
    if bias and is_number(bias.get("estimate")):
        k = _digits(float(mae["estimate"]) if mae and is_number(mae.get("estimate")) else 1.0)
        side, mag = _magnitude(bias)
        text = f"Overall, predictions run {_est(mag, k)} {side}"
        if mae and is_number(mae.get("estimate")):
            text += f"; mean absolute error {_est(mae, k)}"
        out.append(text + ".")
    else:
        k = 2
    for d in disp:
        if d["task"] != task or d["metric"] not in ("bias", "mae") or d["status"] != "ok":
            continue
        if INTERSECTION_SEP in str(d["attribute"]) or not is_number(d.get("p_holm")):
            continue
        if float(d["p_holm"]) >= ALPHA:
            continue
        who = group_phrase(str(d["attribute"]), str(d["group"]))
        g = index.get((task, str(d["attribute"]), str(d["group"]), str(d["metric"])))
        if g is None or not is_number(g.get("estimate")):
            continue
        p = fmt_p(d["p_holm"])
        ref = d["reference"]
        if d["metric"] == "bias":
            side, mag = _magnitude(g)
            out.append(f"Predictions run {_est(mag, k)} {side} for {who}: "
                       f"{fmt_signed(d['difference'], k)} versus the reference {ref} "
                       f"(Holm-adjusted p {p}).")
        else:
            ratio = fmt_num(d.get("ratio"), 2)
            ci = fmt_ci(d.get("ratio_ci_low"), d.get("ratio_ci_high"), 2).replace(" to ", ", ")
            out.append(f"The mean absolute error for {who} is {_est(g, k)}, {ratio} times "
                       f"[{ci}] that of the reference {ref} (Holm-adjusted p {p}).")
    return out


def _disparity_rows(task: str, disp: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for d in disp:
        if d["task"] != task or d["status"] == "suppressed":
            continue
        if d["metric"] not in ("bias", "mae", "loa_lower", "loa_upper", "within_tolerance"):
            continue
        rows.append({
            "phrase": group_phrase(str(d["attribute"]), str(d["group"])),
            "reference": d["reference"], "metric": LABELS.get(str(d["metric"]), d["metric"]),
            "difference": fmt_signed(d.get("difference")),
            "difference_ci": fmt_ci(d.get("difference_ci_low"), d.get("difference_ci_high")),
            "ratio": fmt_num(d.get("ratio")),
            "ratio_ci": fmt_ci(d.get("ratio_ci_low"), d.get("ratio_ci_high")),
            "p_holm": fmt_p(d.get("p_holm")), "status": d["status"],
        })
    return rows


def _figures(task: str, anchor: str, index: Mapping[tuple, Mapping[str, Any]],
             records: list[dict], curves: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    out: dict[str, Any] = {"forest": [], "ba": [], "cal": []}
    for metric in ("bias", "mae"):
        blocks = metric_table(index, records, task, (metric,), min_cell, set())
        ref = 0.0 if metric == "bias" else (index.get((task, OVERALL_ATTRIBUTE, "all", metric))
                                            or {}).get("estimate")
        out["forest"].append(figs.forest_plot(
            forest_rows(blocks, min_cell), reference=ref, metric=metric,
            reference_label="no bias" if metric == "bias" else "overall",
            fig_id=f"{anchor}-forest-{metric}", title=f"{LABELS[metric]} by group: {task}"))
    groups = curves.get("groups") or []
    for attribute in dict.fromkeys(str(g["attribute"]) for g in groups):
        part = [g for g in groups if g["attribute"] == attribute]
        biases = {str(g["group"]): float(r["estimate"]) for g in part
                  if (r := index.get((task, attribute, str(g["group"]), "bias")))
                  and is_number(r.get("estimate"))}
        aslug = slug(attribute, "a")
        out["ba"].append(cfigs.bland_altman_plot(
            part, biases, fig_id=f"{anchor}-ba-{aslug}",
            title=f"Bland-Altman by {attribute}: {task}"))
        out["cal"].append(cfigs.calibration_plot(
            part, fig_id=f"{anchor}-cal-{aslug}", title=f"Calibration by {attribute}: {task}"))
    return out


def continuous_views(data: Mapping[str, Any], figures: bool, min_cell: int
                     ) -> list[dict[str, Any]]:
    """Build the report view of every continuous task.

    Parameters
    ----------
    data : mapping
        ``AuditResult.to_dict()``.
    figures : bool
        Draw the figures.
    min_cell : int
        Small-cell threshold (suppressed labels).

    Returns
    -------
    list of dict
        Per task: ``name``, ``anchor``, ``findings``, ``table`` (metric blocks),
        ``metrics`` (column labels), ``disparities``, ``figures``, ``derived`` and
        ``tolerance``.
    """
    records, disp = data["metrics"], data["disparities"]
    extras = data.get("extras") or {}
    curves = extras.get("continuous") or {}
    index = {(str(r["task"]), str(r["attribute"]), str(r["group"]), str(r["metric"])): r
             for r in records}
    views = []
    for task in _continuous_names(records):
        anchor = slug(task, "cont")
        shown = tuple(m for m in CONTINUOUS_METRICS if (task, OVERALL_ATTRIBUTE, "all", m)
                      in index)
        info = curves.get(task) or {}
        views.append({
            "name": task, "anchor": anchor, "findings": _findings(task, index, disp),
            "table": metric_table(index, records, task, shown, min_cell, set()),
            "metrics": [{"id": m, "label": LABELS[m]} for m in shown],
            "disparities": _disparity_rows(task, disp),
            "figures": _figures(task, anchor, index, records, info, min_cell) if figures
            else {"forest": [], "ba": [], "cal": []},
            "derived": [{"name": n, "anchor": slug(n, "task")}
                        for n in info.get("derived_tasks") or []],
            "tolerance": fmt_num(info.get("tolerance")) if info.get("tolerance") else "",
        })
    return views
