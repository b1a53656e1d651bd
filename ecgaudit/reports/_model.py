"""The report view model: a JSON-serialisable description of every report section.

:func:`build_view` turns an :class:`~ecgaudit.result.AuditResult` (plus an optional gate
result) into plain data; the templates only lay it out. Figures are included as SVG text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ecgaudit.headline import task_verdict, worse_than_chance, worst_group
from ecgaudit.privacy import min_cell_size_of
from ecgaudit.reports import _figures as figs
from ecgaudit.reports._continuous import binary_tasks, continuous_views
from ecgaudit.reports._findings import exploratory_findings, findings, limitations
from ecgaudit.reports._format import (
    METRIC_DEFINITIONS,
    fmt_ci,
    fmt_int,
    fmt_num,
    fmt_pct,
    fmt_signed,
    group_phrase,
    is_number,
    metric_label,
    safe_name,
    slug,
)
from ecgaudit.reports._survival import survival_view
from ecgaudit.reports._tables import (
    CALIBRATION_METRICS,
    HEATMAP_METRICS,
    PERFORMANCE_METRICS,
    Key,
    disparity_section,
    forest_rows,
    metric_table,
    suppressed_label,
)
from ecgaudit.reports._tripod import CROSSWALK
from ecgaudit.reports._viewsection import views_section
from ecgaudit.result import AuditResult
from ecgaudit.schema import INTERSECTION_SEP, METRICS, OVERALL_ATTRIBUTE

_CONTEXT_FIELDS = (
    ("intended_use", "Intended use", "3b"),
    ("out_of_scope", "Out of scope", "3b"),
    ("data_sources", "Data sources", "5a"),
    ("equity_context", "Equity context", "3c"),
)


def _failing(gate: Mapping[str, Any] | None) -> set[Key]:
    out: set[Key] = set()
    for r in (gate or {}).get("rules") or []:
        if str(r.get("outcome")) == "fail" and r.get("metric") and r.get("group") is not None:
            out.add((str(r.get("task")), str(r.get("attribute")), str(r.get("group")),
                     str(r.get("metric"))))
    return out


def _gate_view(gate: Mapping[str, Any] | None) -> dict | None:
    if not gate:
        return None
    rules = []
    for r in gate.get("rules") or []:
        rules.append({
            "rule_id": str(r.get("rule_id", "")), "description": str(r.get("description", "")),
            "task": str(r.get("task") or ""),
            "group": group_phrase(str(r["attribute"]), str(r["group"]))
            if r.get("attribute") and r.get("group") is not None else "",
            "metric": (metric_label(str(r["metric"])) if r.get("metric") else "")
            + (f" @ {float(r['horizon']):g}" if is_number(r.get("horizon")) else ""),
            "outcome": str(r.get("outcome", "")), "value": fmt_num(r.get("value")),
            "ci": fmt_ci(r.get("ci_low"), r.get("ci_high")), "detail": str(r.get("detail") or ""),
            "required": bool(r.get("required", True)),
        })
    order = {"fail": 0, "inconclusive": 1, "pass": 2}
    rules.sort(key=lambda r: order.get(r["outcome"], 3))
    raw = gate.get("summary") or {}
    first = [k for k in ("pass", "fail", "inconclusive") if k in raw]
    summary = {str(k): (fmt_int(raw[k]) if is_number(raw[k]) else str(raw[k]))
               for k in first + sorted(k for k in raw if k not in first)
               if isinstance(raw[k], (int, float, str)) and not isinstance(raw[k], bool)}
    shown = [r for r in rules if r["outcome"] != "pass"]
    return {"status": str(gate.get("status", "unknown")), "exit_code": gate.get("exit_code"),
            "summary": summary, "rules": shown, "n_pass": len(rules) - len(shown),
            "n_rules": len(rules)}


def _compare_view(compare: Mapping[str, Any] | None) -> dict | None:
    if not compare:
        return None
    rows = [r for r in compare.get("rows") or [] if isinstance(r, Mapping)]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    def show(v: Any) -> str:
        return fmt_num(v) if isinstance(v, float) else ("" if v is None else str(v))
    return {
        "title": str(compare.get("title") or "Comparison with baseline"),
        "summary": {str(k): show(v) for k, v in (compare.get("summary") or {}).items()
                    if not isinstance(v, (dict, list))},
        "columns": columns,
        "rows": [[show(r.get(c)) for c in columns] for r in rows],
    }


def _cohort(records: list[dict], extras: Mapping[str, Any], tasks: list[str], total: Any,
            target: Mapping[str, Mapping[str, float]], min_cell: int) -> list[dict]:
    entries = list(extras.get("cohort") or [])
    if not entries:
        seen: dict[tuple[str, str], dict] = {}
        for r in records:
            key = (str(r["attribute"]), str(r["group"]))
            if key[0] == OVERALL_ATTRIBUTE:
                continue
            e = seen.setdefault(key, {"attribute": key[0], "group": key[1], "n": None,
                                      "n_pos_by_task": {}, "status": r.get("status")})
            if is_number(r.get("n")):
                e["n"] = r["n"]
                e["n_pos_by_task"][r["task"]] = r.get("n_pos")
        entries = list(seen.values())
    blocks: dict[str, dict] = {}
    for e in entries:
        attr, group = str(e["attribute"]), str(e["group"])
        n = e.get("n")
        small = not is_number(n) or e.get("status") == "suppressed"
        pos = e.get("n_pos_by_task") or {}
        tgt = (target.get(attr) or {}).get(group)
        block = blocks.setdefault(attr, {"attribute": attr, "has_target": attr in target,
                                         "intersection": INTERSECTION_SEP in attr, "rows": [],
                                         "suppressed": []})
        if small:
            block["suppressed"].append(group)
            continue
        block["rows"].append({
            "group": group, "suppressed": small,
            "n": suppressed_label(min_cell) if small else fmt_int(n),
            "pct": "" if small else fmt_pct(n, total),
            "prevalence": ["" if small else fmt_pct(pos.get(t), n) for t in tasks],
            "target": fmt_pct(tgt, 1.0) if is_number(tgt) else "",
            "gap": (fmt_signed(100.0 * (float(n) / float(total) - float(tgt)), 1) + " pts")
            if is_number(tgt) and not small and is_number(total) else "",
        })
    return sorted(blocks.values(), key=lambda b: b["intersection"])


def _methods(config: Mapping[str, Any], records: list[dict], manifest: Mapping[str, Any],
             extras: Mapping[str, Any], tasks: list[str], min_cell: int) -> dict:
    ci_methods: dict[str, set[str]] = {}
    for r in records:
        if r.get("ci_method"):
            ci_methods.setdefault(str(r["metric"]), set()).add(str(r["ci_method"]))
    present = [m for m in METRICS if any(r["metric"] == m for r in records)]
    thresholds = manifest.get("thresholds") or extras.get("thresholds") or {}
    th_rows = []
    for t in tasks:
        th = thresholds.get(t) or {}
        target = th.get("target")
        th_rows.append({
            "task": t, "value": fmt_num(th.get("value"), 4), "rule": str(th.get("rule") or "–"),
            "target": fmt_num(target) if is_number(target) else "",
            "derived_on": str(th.get("derived_on") or ""),
        })
    cal = config.get("calibration") or {}
    refs = extras.get("reference_groups") or {}
    order = {a: i for i, a in enumerate(dict.fromkeys(str(r["attribute"]) for r in records))}
    refs = dict(sorted(refs.items(), key=lambda kv: (order.get(str(kv[0]), len(order)),
                                                     str(kv[0]))))
    return {
        "metrics": [{"id": m, "label": metric_label(m), "definition": METRIC_DEFINITIONS.get(m, ""),
                     "ci": ", ".join(sorted(ci_methods.get(m, set()))) or "none"} for m in present],
        "thresholds": th_rows,
        "references": [{"attribute": str(a), "group": str(g)} for a, g in refs.items()],
        "ci_level": fmt_pct(config.get("ci_level", 0.95), 1.0, 0),
        "min_cell": min_cell, "min_events": config.get("min_events", 10),
        "clip": str(cal.get("clip", "")), "ece_bins": str(cal.get("ece_bins", 10)),
        "bootstrap": int(config.get("bootstrap") or 0),
        "bootstrap_method": str(config.get("bootstrap_method") or ""),
        "intersections": json.dumps(config.get("intersections", "pairs")),
    }


def _reproducibility(manifest: Mapping[str, Any], config: Mapping[str, Any]) -> dict:
    inputs = [{"role": str(i.get("role", "")), "name": safe_name(i.get("name")),
               "sha256": str(i.get("sha256", "")), "rows": fmt_int(i.get("rows"))}
              for i in manifest.get("inputs") or [] if isinstance(i, Mapping)]
    deps = manifest.get("dependencies") or {}
    return {
        "ecgaudit_version": str(manifest.get("ecgaudit_version", "unknown")),
        "python_version": str(manifest.get("python_version", "unknown")),
        "schema_version": str(manifest.get("schema_version", "")),
        "seed": str(manifest.get("seed", config.get("seed", ""))),
        "dependencies": [{"name": str(k), "version": str(v)} for k, v in sorted(deps.items())],
        "inputs": inputs,
        "config": json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False),
    }


def _ordered_curves(curves: Mapping[str, Any], records: list[dict]) -> dict:
    """Order reliability panels and groups as in the metrics table (not by JSON key order)."""
    pairs = list(dict.fromkeys((str(r["attribute"]), str(r["group"])) for r in records))
    rank = {p: i for i, p in enumerate(pairs)}
    attrs = {a: i for i, (a, _) in reversed(list(enumerate(pairs)))}
    out = {}
    for attr in sorted(curves, key=lambda a: (attrs.get(a, len(pairs)), a)):
        groups = curves[attr] or {}
        out[attr] = {g: groups[g] for g in sorted(
            groups, key=lambda g: (rank.get((attr, g), len(pairs)), g))}
    return out


def _headline_card(task: str, anchor: str, overall: Mapping[str, Any], records: list[dict],
                   disp: list[dict], extras: Mapping[str, Any],
                   gate: Mapping[str, Any] | None) -> dict:
    """Summary card of a task: the shared headline rules (:mod:`ecgaudit.headline`) rendered.

    The rules are pure functions of the published tables, applied here as in the CLI and
    ``AuditResult.worst_group``, so a saved result always renders the same headline.
    """
    worst = worst_group(records, task)
    verdict = task_verdict(task, records, disp, extras.get("power") or [], gate)
    return {
        "task": task, "anchor": anchor, "n": fmt_int(overall.get("n")),
        "n_pos": fmt_int(overall.get("n_pos")),
        "prevalence": fmt_pct(overall.get("n_pos"), overall.get("n")),
        "auroc": fmt_num(overall.get("estimate")),
        "auroc_ci": fmt_ci(overall.get("ci_low"), overall.get("ci_high")),
        "worst_group": group_phrase(worst.attribute, worst.group) if worst else "",
        "worst_auroc": fmt_num(worst.estimate) if worst else "–",
        "worst_ci": fmt_ci(worst.ci_low, worst.ci_high) if worst else "",
        "worst_unstable": bool(worst and worst.unstable),
        "worst_considered": worst.n_groups if worst else 0,
        "below_chance": [{"group": group_phrase(str(r["attribute"]), str(r["group"])),
                          "auroc": fmt_num(r["estimate"]),
                          "unstable": r.get("status") == "unstable"}
                         for r in worse_than_chance(records, task)],
        "verdict": verdict["verdict"], "verdict_text": verdict["text"],
    }


def _task_view(t: str, index: dict[Key, dict], records: list[dict], disp: list[dict],
               extras: Mapping[str, Any], gate: Mapping[str, Any] | None,
               failing: set[Key], min_cell: int, figures: bool) -> tuple[dict[str, Any], dict]:
    """Return one task's section (tables, disparities, figures) and its headline card."""
    curves = extras.get("curves") or {}
    anchor = slug(t, "task")
    perf = metric_table(index, records, t, PERFORMANCE_METRICS, min_cell, failing)
    cal = metric_table(index, records, t, CALIBRATION_METRICS, min_cell, failing)
    dsec = disparity_section(disp, t, min_cell, failing)
    o = index.get((t, OVERALL_ATTRIBUTE, "all", "auroc")) or {}
    view: dict[str, Any] = {
        "name": t, "anchor": anchor, "performance": perf, "calibration": cal,
        "disparity": dsec, "forest_svg": "", "reliability_svg": "", "heatmap_svg": "",
        "has_curves": bool(curves.get(t)),
    }
    if figures:
        view["forest_svg"] = figs.forest_plot(
            forest_rows(perf, min_cell), reference=o.get("estimate"),
            fig_id=f"{anchor}-forest", title=f"AUROC by group: {t}")
        if curves.get(t):
            view["reliability_svg"] = figs.reliability_plot(
                _ordered_curves(curves[t], records), fig_id=f"{anchor}-reliability",
                title=f"Reliability curves: {t}")
        heat = dsec["heat"]
        if heat["groups"]:
            view["heatmap_svg"] = figs.disparity_heatmap(
                heat["groups"], HEATMAP_METRICS, heat["values"], heat["failing"],
                fig_id=f"{anchor}-heatmap", title=f"Differences versus reference: {t}")
    return view, _headline_card(t, anchor, o, records, disp, extras, gate)


def build_view(result: AuditResult, *, gate: Mapping[str, Any] | None = None,
               compare: Mapping[str, Any] | None = None, figures: bool = True) -> dict:
    """Build the report view model of an audit result.

    Parameters
    ----------
    result : AuditResult
        The audit result (tables, manifest, extras); no patient rows are needed.
    gate : mapping, optional
        A gate result (``GateResult.to_dict()``); failing rules are highlighted.
    compare : mapping, optional
        A comparison with a baseline: ``title``, ``summary`` (scalars), ``rows`` (records).
    figures : bool
        Whether to draw the SVG figures (False gives a smaller model for tests).

    Returns
    -------
    dict
        JSON-serialisable data for the templates.
    """
    data = result.to_dict()
    records, disp = data["metrics"], data["disparities"]
    manifest, extras = data["manifest"], data["extras"]
    config = manifest.get("config") or {}
    ctx = config.get("context") or {}
    min_cell = min_cell_size_of(result)
    tasks = binary_tasks(records)  # continuous tasks: reports/_continuous.py
    index: dict[Key, dict] = {(str(r["task"]), str(r["attribute"]), str(r["group"]),
                               str(r["metric"])): r for r in records}
    failing = _failing(gate)
    overall = [index.get((t, OVERALL_ATTRIBUTE, "all", "auroc")) for t in tasks]
    total = next((r["n"] for r in overall if r and is_number(r.get("n"))), None)
    task_views, headline = [], []
    for t in tasks:
        view, card = _task_view(t, index, records, disp, extras, gate, failing, min_cell,
                                figures)
        task_views.append(view)
        headline.append(card)
    cohort = _cohort(records, extras, tasks, total, ctx.get("target_population") or {}, min_cell)
    raw_th = manifest.get("thresholds") or extras.get("thresholds") or {}
    thresholds = {t: raw_th[t] for t in tasks if t in raw_th}
    return {
        "title": f"Fairness audit: {ctx.get('model_name') or 'ECG model'}",
        "model_name": str(ctx.get("model_name") or "not given"),
        "model_version": str(ctx.get("model_version") or "not given"),
        "n_total": fmt_int(total), "tasks": task_views, "headline": headline,
        "attributes": [a for a in dict.fromkeys(str(r["attribute"]) for r in records)
                       if a != OVERALL_ATTRIBUTE and INTERSECTION_SEP not in a],
        "findings": findings(records, disp, tasks, gate, min_cell,
                             config.get("min_events", 10)),
        "findings_exploratory": exploratory_findings(records, disp, tasks),
        "gate": _gate_view(gate), "compare": _compare_view(compare),
        "context": [{"key": k, "title": title, "text": str(ctx[k]), "tripod": item}
                    for k, title, item in _CONTEXT_FIELDS if ctx.get(k)],
        "cohort": cohort,
        "has_target": any(b["has_target"] for b in cohort),
        "methods": _methods(config, records, manifest, extras, tasks, min_cell),
        "limitations": limitations(records, disp, extras.get("cohort") or [], config,
                                   thresholds, total, min_cell),
        "reproducibility": _reproducibility(manifest, config),
        "crosswalk": [{"id": sid, "title": title, "how": how,
                       "tripod_items": [{"item": i, "text": x} for i, x in items]}
                      for sid, title, items, how in CROSSWALK],
        "perf_metrics": [{"id": m, "label": metric_label(m)} for m in PERFORMANCE_METRICS],
        "cal_metrics": [{"id": m, "label": metric_label(m)} for m in CALIBRATION_METRICS],
        "suppressed_text": suppressed_label(min_cell), "min_cell": min_cell,
        "continuous": continuous_views(data, figures, min_cell),
        "views": views_section(data, figures=figures),
        "survival": survival_view(records, disp, extras, figures),
    }
