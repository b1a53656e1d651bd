"""Report view model of the committee views: age curves, controlled disparities, exports.

Built from ``results.json`` content only (renders, computes nothing new): the curve rows
and controlled-disparity rows the audit stored in ``extras``, and the standards exports'
field provenance (:func:`ecgaudit.reports._standards.build_export`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecgaudit.reports._format import (
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_signed,
    group_phrase,
    is_number,
    metric_label,
    slug,
)
from ecgaudit.reports._hti1 import HTI5_NOTE
from ecgaudit.reports._standards import VIEW_CROSSWALK, build_export
from ecgaudit.reports._viewfigures import curve_plot

__all__ = ["views_section"]

_CURVE_METRICS = ("auroc", "sensitivity", "specificity", "oe_ratio")
_CONTROLLED_METRICS = ("auroc", "sensitivity", "specificity")
_SOURCE_TEXT = {"audit": "filled from the audit", "context": "from the config's context",
                "user": "left for the user"}


def _curves(extras: Mapping[str, Any], figures: bool) -> list[dict[str, Any]]:
    rows = extras.get("curves_by_value") or []
    axes = extras.get("curves_by_value_axes") or {}
    out = []
    tasks = list(dict.fromkeys(str(r["task"]) for r in rows))
    for axis, meta in axes.items():
        by_list = [b for b in meta.get("by") or [] if b != "overall"] or ["overall"]
        for task in tasks:
            for by in by_list:
                sub = [r for r in rows if r["task"] == task and r["axis"] == axis
                       and r["by"] in ("overall", by)]
                lines: dict[str, list] = {}
                for r in sub:
                    label = "all patients" if r["by"] == "overall" else str(r["group"])
                    lines.setdefault(label, []).append(r)
                withheld = sum(1 for r in sub if r["status"] != "ok")
                anchor = slug(f"{task}-{axis}-{by}", "curve")
                title = f"{', '.join(metric_label(m) for m in _CURVE_METRICS)} along {axis}" + (
                    f" by {by}" if by != "overall" else "") + f": {task}"
                out.append({
                    "task": task, "axis": axis, "by": by, "anchor": anchor, "title": title,
                    "svg": curve_plot(lines, axis=axis, metrics=_CURVE_METRICS,
                                      fig_id=anchor, title=title) if figures and sub else "",
                    "n_withheld": withheld, "n_points": len(sub),
                    "groups_withheld": [f"{w['group']} ({w['reason']})"
                                        for w in meta.get("withheld") or [] if w["by"] == by],
                })
    return out


def _axes_text(extras: Mapping[str, Any]) -> list[dict[str, str]]:
    out = []
    for axis, m in (extras.get("curves_by_value_axes") or {}).items():
        grid = m.get("grid") or []
        out.append({"axis": axis, "bandwidth": fmt_num(m.get("bandwidth"), 2),
                    "rule": str(m.get("bandwidth_rule", "")),
                    "grid": f"{fmt_num(grid[0], 1)}-{fmt_num(grid[-1], 1)} ({len(grid)} points)"
                    if grid else "none", "min_eff": str(m.get("min_effective_n", ""))})
    return out


def _controlled(data: Mapping[str, Any]) -> dict[str, Any] | None:
    extras = data.get("extras") or {}
    rows = extras.get("controlled_disparities")
    if not rows:
        return None
    crude = {(d["task"], d["attribute"], d["group"], d["metric"]): d
             for d in data.get("disparities") or []}
    tasks: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["metric"] not in _CONTROLLED_METRICS:
            continue
        c = crude.get((r["task"], r["attribute"], r["group"], r["metric"])) or {}
        tasks.setdefault(r["task"], []).append({
            "attribute": r["attribute"], "group": r["group"],
            "phrase": group_phrase(str(r["attribute"]), str(r["group"])),
            "reference": str(r["reference"]), "metric": r["metric"],
            "metric_label": metric_label(r["metric"]),
            "crude": _diff(c), "crude_ci": _ci(c),
            "controlled": _diff(r), "controlled_ci": _ci(r),
            "status": str(r.get("status") or ""), "reason": str(r.get("reason") or ""),
            "test_p": fmt_p(r.get("p_value")) if is_number(r.get("p_value")) else "–",
            "het": (f"{r['heterogeneity_test']} p = {fmt_p(r['heterogeneity_p'])}"
                    if is_number(r.get("heterogeneity_p")) else "–"),
            "n_strata": str(r["n_strata"]) if is_number(r.get("n_strata")) else "–",
        })
    return {"control": ", ".join(extras.get("control") or []),
            "tasks": [{"task": t, "anchor": slug(t, "ctl"), "rows": v} for t, v in tasks.items()]}


def _diff(d: Mapping[str, Any]) -> str:
    return fmt_signed(d.get("difference")) if is_number(d.get("difference")) else (
        "suppressed" if d.get("status") == "suppressed" else "–")


def _ci(d: Mapping[str, Any]) -> str:
    return fmt_ci(d.get("difference_ci_low"), d.get("difference_ci_high")) or ""


def _standards(data: Mapping[str, Any]) -> dict[str, Any]:
    hti1 = build_export(data, "hti1")
    chai = build_export(data, "chai")
    counts = {"audit": 0, "context": 0, "user": 0}

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if "source" in node and "value" in node:
                counts[str(node["source"])] += 1
                return
            for v in node.values():
                walk(v)

    walk(chai["AppliedModelCard"])
    return {
        "hti1": [{"id": a["id"], "category": a["category"], "attribute": a["attribute"],
                  "source": a["source"], "source_text": _SOURCE_TEXT[a["source"]]}
                 for a in hti1["attributes"]],
        "chai_counts": counts, "hti5": HTI5_NOTE,
    }


def views_section(data: Mapping[str, Any], *, figures: bool = True) -> dict[str, Any]:
    """Build the view model of the committee-views sections.

    Parameters
    ----------
    data : mapping
        The content of ``results.json``.
    figures : bool
        Whether to draw the SVG curve figures.

    Returns
    -------
    dict
        ``curves`` (figures), ``axes`` (bandwidth and grid per axis), ``controlled``
        (crude beside controlled per task, or None), ``standards`` (export provenance)
        and ``crosswalk`` (TRIPOD+AI items of the sections present).
    """
    extras = data.get("extras") or {}
    return {
        "curves": _curves(extras, figures), "axes": _axes_text(extras),
        "controlled": _controlled(data), "standards": _standards(data),
        "crosswalk": [{"id": sid, "title": title, "how": how,
                       "tripod_items": [{"item": i, "text": x} for i, x in items]}
                      for key, sid, title, items, how in VIEW_CROSSWALK if extras.get(key)],
    }
