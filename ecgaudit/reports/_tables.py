"""Per-task tables of the report view model: performance, calibration and disparities.

The view model works on plain JSON records (``AuditResult.to_dict()``), never on patient
rows. Cells that are suppressed or insufficient carry a label and a footnote, never a number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from ecgaudit.reports._format import (
    fmt_ci,
    fmt_int,
    fmt_num,
    fmt_p,
    fmt_signed,
    group_phrase,
    is_number,
    metric_label,
)
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE

#: Columns of the subgroup performance table.
PERFORMANCE_METRICS: Final = (
    "auroc", "auprc", "sensitivity", "specificity", "ppv", "npv", "flag_rate",
)
#: Columns of the calibration table.
CALIBRATION_METRICS: Final = ("brier", "oe_ratio", "cal_intercept", "cal_slope", "ece")
#: Columns of the disparity matrix and heat map.
DISPARITY_METRICS: Final = (
    "auroc", "sensitivity", "specificity", "ppv", "npv", "flag_rate", "cal_slope",
)
HEATMAP_METRICS: Final = ("auroc", "sensitivity", "specificity", "ppv", "npv", "flag_rate")
#: At most this many "notable difference" rows per task (all are in disparities.csv).
MAX_NOTABLE: Final = 40

Key = tuple[str, str, str, str]


def suppressed_label(min_cell: int) -> str:
    """Return the text shown instead of a number in a suppressed cell (footnoted)."""
    del min_cell  # the footnote gives the rule: groups and counts of 1..min_cell-1
    return "suppressed (privacy)"


def value_cell(rec: Mapping[str, Any] | None, min_cell: int, failing: bool = False) -> dict:
    """Turn one metrics record into a display cell.

    Parameters
    ----------
    rec : mapping or None
        A row of ``metrics`` (None when the audit produced no row).
    min_cell : int
        Small-cell threshold (for the suppressed label).
    failing : bool
        Whether a policy rule fails on this cell.

    Returns
    -------
    dict
        ``kind`` (value/unstable/suppressed/insufficient/missing), ``text``, ``ci``,
        ``note`` and ``fail``.
    """
    if rec is None:
        return {"kind": "missing", "text": "not computed", "ci": "", "note": "", "fail": failing}
    status = str(rec.get("status") or "ok")
    if status == "suppressed" or (status != "insufficient" and not is_number(rec["estimate"])
                                  and rec.get("n") is None):
        return {"kind": "suppressed", "text": suppressed_label(min_cell), "ci": "",
                "note": "", "fail": failing}
    if status == "insufficient" or not is_number(rec.get("estimate")):
        reason = str(rec.get("reason") or "not estimable")
        return {"kind": "insufficient", "text": f"insufficient: {reason}", "ci": "",
                "note": reason, "fail": failing}
    kind = "unstable" if status == "unstable" else "value"
    low, high = rec.get("ci_low"), rec.get("ci_high")
    return {"kind": kind, "text": fmt_num(rec["estimate"]), "ci": fmt_ci(low, high),
            "note": str(rec.get("reason") or ""), "fail": failing,
            "value": float(rec["estimate"]),
            "low": float(low) if is_number(low) else None,
            "high": float(high) if is_number(high) else None}


def ordered_groups(records: Iterable[Mapping[str, Any]], task: str) -> list[tuple[str, str]]:
    """Return ``(attribute, group)`` pairs of a task: overall, single attributes, intersections."""
    seen = dict.fromkeys((str(r["attribute"]), str(r["group"])) for r in records
                         if r["task"] == task)
    pairs = list(seen)

    def rank(p: tuple[str, str]) -> int:
        if p[0] == OVERALL_ATTRIBUTE:
            return 0
        return 2 if INTERSECTION_SEP in p[0] else 1

    return sorted(pairs, key=rank)


def group_counts(index: Mapping[Key, Mapping[str, Any]], task: str, attribute: str,
                 group: str, metrics: Iterable[str]) -> tuple[Any, Any]:
    """Return ``(n, n_pos)`` of a group from its first metric row that has them."""
    for m in metrics:
        rec = index.get((task, attribute, group, m))
        if rec is not None and is_number(rec.get("n")):
            return rec.get("n"), rec.get("n_pos")
    return None, None


def metric_table(index: Mapping[Key, Mapping[str, Any]], records: list[dict], task: str,
                 metrics: tuple[str, ...], min_cell: int, failing: set[Key]) -> list[dict]:
    """Build the grouped rows of a per-task metric table.

    Returns
    -------
    list of dict
        One block per attribute: ``attribute``, ``rows`` (each: ``group``, ``n``, ``n_pos``,
        ``cells`` keyed like ``metrics``) and ``suppressed`` (names of groups whose every
        cell is suppressed, listed together instead of one row each).
    """
    blocks: dict[str, dict] = {}
    for attribute, group in ordered_groups(records, task):
        recs = [index.get((task, attribute, group, m)) for m in metrics]
        if all(r is None for r in recs):
            continue
        n, n_pos = group_counts(index, task, attribute, group, metrics)
        cells = [value_cell(r, min_cell, (task, attribute, group, m) in failing)
                 for r, m in zip(recs, metrics)]
        block = blocks.setdefault(attribute, {"attribute": attribute, "rows": [],
                                              "suppressed": []})
        if all(c["kind"] == "suppressed" for c in cells):
            block["suppressed"].append(group)
            continue
        block["rows"].append({
            "attribute": attribute, "group": group,
            "n": fmt_int(n) if n is not None else suppressed_label(min_cell),
            "n_pos": fmt_int(n_pos) if n is not None else "",
            "cells": [{"metric": m, **c} for m, c in zip(metrics, cells)],
        })
    return list(blocks.values())


def forest_rows(blocks: list[dict], min_cell: int) -> list[dict]:
    """Rows of the AUROC forest plot: overall and single attributes (intersections in tables)."""
    out = []
    for block in blocks:
        if INTERSECTION_SEP in block["attribute"]:
            continue
        for row in block["rows"]:
            cell = row["cells"][0]
            label = "Overall" if block["attribute"] == OVERALL_ATTRIBUTE else (
                f"{block['attribute']}: {row['group']}")
            est = cell.get("value")
            out.append({
                "label": label, "attribute": block["attribute"], "estimate": est,
                "ci_low": cell.get("low"), "ci_high": cell.get("high"),
                "status": "ok" if cell["kind"] == "value" else cell["kind"],
                "note": cell["text"] if est is None else "",
            })
    return out


def _disp_cell(rec: Mapping[str, Any] | None, min_cell: int, failing: bool) -> dict:
    if rec is None:
        return {"kind": "missing", "text": "–", "ci": "", "fail": failing, "p": ""}
    status = str(rec.get("status") or "ok")
    if not is_number(rec.get("difference")):
        if status == "suppressed":
            text = suppressed_label(min_cell)
        else:
            text = f"insufficient: {rec.get('reason') or 'not estimable'}"
        kind = "suppressed" if status == "suppressed" else "insufficient"
        return {"kind": kind, "text": text, "ci": "", "fail": failing, "p": ""}
    return {
        "kind": "unstable" if status == "unstable" else "value",
        "text": fmt_signed(rec["difference"]),
        "ci": fmt_ci(rec.get("difference_ci_low"), rec.get("difference_ci_high")),
        "fail": failing, "p": fmt_p(rec.get("p_bh")),
    }


def ci_excludes_zero(rec: Mapping[str, Any]) -> bool:
    """Return True if a disparity's difference CI lies entirely on one side of zero."""
    lo, hi = rec.get("difference_ci_low"), rec.get("difference_ci_high")
    return is_number(lo) and is_number(hi) and (float(lo) > 0 or float(hi) < 0)


def disparity_section(disparities: list[dict], task: str, min_cell: int,
                      failing: set[Key]) -> dict:
    """Build the disparity matrix, heat-map data and notable-difference rows of one task."""
    recs = [d for d in disparities if d["task"] == task]
    extra = sorted({k[3] for k in failing if k[0] == task} - set(DISPARITY_METRICS))
    metrics = (*DISPARITY_METRICS, *[m for m in extra if any(d["metric"] == m for d in recs)])
    index = {(str(d["attribute"]), str(d["group"]), str(d["metric"])): d for d in recs}
    blocks: dict[str, dict] = {}
    heat_groups, heat_vals, heat_fail = [], [], []
    for attribute, group in dict.fromkeys((str(d["attribute"]), str(d["group"])) for d in recs):
        ref = next((str(d["reference"]) for d in recs if d["attribute"] == attribute), "")
        cells = [_disp_cell(index.get((attribute, group, m)), min_cell,
                            (task, attribute, group, m) in failing) for m in metrics]
        block = blocks.setdefault(attribute, {"attribute": attribute, "reference": ref,
                                              "rows": [], "suppressed": []})
        if all(c["kind"] in ("suppressed", "missing") for c in cells) and not any(
                c["fail"] for c in cells):
            block["suppressed"].append(group)
            continue
        block["rows"].append({
            "group": group, "fail": any(c["fail"] for c in cells),
            "cells": [{"metric": m, **c} for m, c in zip(metrics, cells)],
        })
        if INTERSECTION_SEP not in attribute and any(c["kind"] != "suppressed" for c in cells):
            heat_groups.append(f"{attribute}: {group}")
            heat_vals.append([index.get((attribute, group, m), {}).get("difference")
                              for m in HEATMAP_METRICS])
            heat_fail.append([(task, attribute, group, m) in failing for m in HEATMAP_METRICS])
    notable = [d for d in recs if (task, str(d["attribute"]), str(d["group"]), str(d["metric"]))
               in failing or (is_number(d.get("difference")) and ci_excludes_zero(d))]
    notable.sort(key=lambda d: (
        (task, d["attribute"], d["group"], d["metric"]) not in failing,
        -abs(float(d["difference"])) if is_number(d.get("difference")) else 0.0,
        str(d["attribute"]), str(d["group"]), str(d["metric"])))
    rows = [{
        "attribute": d["attribute"], "group": d["group"],
        "reference": group_phrase(str(d["attribute"]), str(d["reference"])),
        "phrase": group_phrase(str(d["attribute"]), str(d["group"])),
        "metric": d["metric"], "metric_label": metric_label(str(d["metric"])),
        "difference": fmt_signed(d.get("difference")),
        "difference_ci": fmt_ci(d.get("difference_ci_low"), d.get("difference_ci_high")),
        "ratio": fmt_num(d.get("ratio")),
        "ratio_ci": fmt_ci(d.get("ratio_ci_low"), d.get("ratio_ci_high")),
        "p_value": fmt_p(d.get("p_value")), "p_holm": fmt_p(d.get("p_holm")),
        "p_bh": fmt_p(d.get("p_bh")), "test": str(d.get("test") or ""),
        "fail": (task, d["attribute"], d["group"], d["metric"]) in failing,
    } for d in notable[:MAX_NOTABLE]]
    return {
        "blocks": list(blocks.values()), "notable": rows,
        "metrics": [{"id": m, "label": metric_label(m)} for m in metrics],
        "notable_total": len(notable), "notable_shown": len(rows),
        "heat": {"groups": heat_groups, "values": heat_vals, "failing": heat_fail},
    }
