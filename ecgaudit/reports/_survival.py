"""The survival section of the report: tables, forest plots, Kaplan-Meier and calibration.

Renders what the audit computed (metric rows with a ``horizon``, disparity rows and the
``extras.survival_curves`` entries); computes no statistic. Only groups that passed
small-cell suppression have curves in the extras, so none can appear here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

from ecgaudit.registry import labels
from ecgaudit.reports import _figures as figs
from ecgaudit.reports._format import fmt_ci, fmt_num, group_phrase, is_number, slug
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE

__all__ = ["survival_view"]

LABELS = labels("survival", short=True)
TABLE_METRICS = ("harrell_c", "td_auroc", "brier", "oe_ratio", "cal_ici", "sensitivity")
FINDING_METRICS = ("harrell_c", "td_auroc", "oe_ratio")


def _h(value: Any) -> str:
    return f"{float(value):g}" if is_number(value) else ""


def _label(metric: str, horizon: Any) -> str:
    h = _h(horizon)
    return f"{LABELS.get(metric, metric)} @ {h}" if h else LABELS.get(metric, metric)


def _columns(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    # columns with a number for at least one group (a risk score has no calibration)
    present = {(str(r["metric"]), _h(r.get("horizon"))) for r in records
               if is_number(r.get("estimate"))}
    horizons = sorted({h for _, h in present if h}, key=float)
    cols = []
    for m in TABLE_METRICS:
        cols += [(m, h) for h in ["", *horizons] if (m, h) in present]
    return cols


def _cell(r: Mapping[str, Any] | None) -> dict[str, str]:
    if r is None:
        return {"kind": "missing", "text": "–", "ci": ""}
    status = str(r.get("status") or "ok")
    if not is_number(r.get("estimate")):
        return {"kind": "insufficient" if status != "suppressed" else "suppressed",
                "text": status, "ci": "", "reason": str(r.get("reason") or "")}
    return {"kind": "unstable" if status == "unstable" else "value",
            "text": fmt_num(r["estimate"]), "ci": fmt_ci(r.get("ci_low"), r.get("ci_high")),
            "reason": str(r.get("reason") or "")}


def _table(records: list[dict], cols: list[tuple[str, str]]) -> list[dict]:
    index = {(str(r["attribute"]), str(r["group"]), str(r["metric"]), _h(r.get("horizon"))): r
             for r in records}
    groups = list(dict.fromkeys((str(r["attribute"]), str(r["group"])) for r in records))
    rows = []
    for a, g in groups:
        first = next(r for r in records if r["attribute"] == a and r["group"] == g)
        rows.append({"attribute": a, "group": "All patients" if a == OVERALL_ATTRIBUTE else g,
                     "n": fmt_num(first.get("n"), 0) if is_number(first.get("n")) else "–",
                     "events": fmt_num(first.get("n_pos"), 0)
                     if is_number(first.get("n_pos")) else "–",
                     "cells": [_cell(index.get((a, g, m, h))) for m, h in cols]})
    return rows


def _forest(records: list[dict], metric: str, horizon: str, fig_id: str, task: str) -> str:
    rows, ref = [], None
    for r in records:
        if r["metric"] != metric or _h(r.get("horizon")) != horizon:
            continue
        a = str(r["attribute"])
        if INTERSECTION_SEP in a:
            continue
        est = r.get("estimate") if is_number(r.get("estimate")) else None
        if a == OVERALL_ATTRIBUTE:
            ref = est
        rows.append({"label": "Overall" if a == OVERALL_ATTRIBUTE else f"{a}: {r['group']}",
                     "attribute": a, "estimate": est, "ci_low": r.get("ci_low"),
                     "ci_high": r.get("ci_high"), "status": str(r.get("status")),
                     "note": "" if est is not None else str(r.get("status"))})
    if not rows:
        return ""
    return figs.forest_plot(rows, reference=ref, fig_id=fig_id, metric=metric,
                            title=f"{_label(metric, horizon)} by group: {task}")


def _km_plot(panel: Mapping[str, Mapping[str, Any]], fig_id: str, title: str) -> str:
    with mpl.rc_context(figs._RC):
        fig = Figure(figsize=(5.2, 3.2))
        ax = fig.add_subplot()
        desc = []
        for i, (group, entry) in enumerate(panel.items()):
            km = entry["km"]
            ax.step(km["time"], km["survival"], where="post", lw=1.5,
                    color=figs.OKABE_ITO[i % len(figs.OKABE_ITO)],
                    ls=("-", "--", ":", "-.")[i % 4], label=figs.mpl_text(group))
            desc.append(f"{group}: event-free {km['survival'][-1]:.2f} at {km['time'][-1]:g}")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("time")
        ax.set_ylabel("event-free (Kaplan-Meier)")
        ax.legend(fontsize=8, frameon=False)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        return figs._to_svg(fig, fig_id, title, "Kaplan-Meier curves by group. "
                            + "; ".join(desc) + ".")


def _cal_plot(panel: Mapping[str, Mapping[str, Any]], horizon: str, fig_id: str,
              title: str) -> str:
    with mpl.rc_context(figs._RC):
        fig = Figure(figsize=(4.2, 3.6))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], ls=":", color="#555555", lw=1)
        desc, top = [], 0.05
        for i, (group, entry) in enumerate(panel.items()):
            pts = [p for p in (entry.get("calibration") or {}).get(horizon, [])
                   if p.get("observed") is not None]
            if not pts:
                continue
            x = [p["predicted"] for p in pts]
            y = [p["observed"] for p in pts]
            top = max(top, *x, *y)
            ax.plot(x, y, marker=figs.MARKERS[i % len(figs.MARKERS)], lw=1.2,
                    color=figs.OKABE_ITO[i % len(figs.OKABE_ITO)], label=figs.mpl_text(group))
            desc.append(f"{group}: " + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(x, y)))
        if not desc:
            return ""
        lim = min(1.0, top * 1.1)
        ax.set_xlim(0, lim)
        ax.set_ylim(0, lim)
        ax.set_xlabel(f"mean predicted risk by {horizon}")
        ax.set_ylabel("observed risk (Kaplan-Meier)")
        ax.legend(fontsize=8, frameon=False)
        return figs._to_svg(fig, fig_id, title, "Observed against predicted risk in risk "
                            "fifths by group (predicted/observed). " + "; ".join(desc) + ".")


def _findings(task: str, disp: list[dict]) -> list[str]:
    out = []
    for d in disp:
        if d["task"] != task or d["metric"] not in FINDING_METRICS or d.get("status") != "ok":
            continue
        lo, hi = d.get("difference_ci_low"), d.get("difference_ci_high")
        if not (is_number(lo) and is_number(hi)) or lo <= 0 <= hi:
            continue
        diff = float(d["difference"])
        who = group_phrase(str(d["attribute"]), str(d["group"]))
        ref = group_phrase(str(d["attribute"]), str(d["reference"]))
        what = _label(str(d["metric"]), d.get("horizon"))
        word = "higher" if diff > 0 else "lower"
        out.append(f"{what} is {abs(diff):.3f} {word} for {who} than for {ref} "
                   f"(95% CI of the difference {float(lo):.3f} to {float(hi):.3f}, not adjusted "
                   "for multiplicity).")
    return out


def _infeasible(records: list[dict]) -> list[str]:
    seen = dict.fromkeys(
        f"{group_phrase(str(r['attribute']), str(r['group']))}: {r['reason']}"
        for r in records if "follow-up in this group ends" in str(r.get("reason") or ""))
    return list(seen)


def survival_view(records: list[dict], disp: list[dict], extras: Mapping[str, Any],
                  figures: bool = True) -> dict | None:
    """View model of the survival section (``None`` when the audit has no survival rows).

    Parameters
    ----------
    records, disp : list of dict
        Metric and disparity records of the result.
    extras : mapping
        The result's extras (``survival_curves``).
    figures : bool
        Whether to draw the SVG figures.

    Returns
    -------
    dict or None
    """
    if not any(r.get("metric") == "harrell_c" for r in records):
        return None
    curves = extras.get("survival_curves") or {}
    tasks = []
    for t in dict.fromkeys(str(r["task"]) for r in records if r.get("metric") == "harrell_c"):
        rec = [r for r in records if r["task"] == t]
        cols = _columns(rec)
        anchor = slug(t, "surv")
        view: dict[str, Any] = {
            "name": t, "anchor": anchor,
            "columns": [{"label": _label(m, h)} for m, h in cols],
            "rows": _table(rec, cols), "findings": _findings(t, disp),
            "infeasible": _infeasible(rec), "figures": []}
        if figures:
            hs = sorted({_h(r.get("horizon")) for r in rec if _h(r.get("horizon"))}, key=float)
            for m, h in [("harrell_c", ""), *(("td_auroc", h) for h in hs)]:
                svg = _forest(rec, m, h, f"{anchor}-forest-{m}-{h or 'all'}", t)
                if svg:
                    view["figures"].append({"svg": svg, "caption": f"{_label(m, h)} with 95% "
                                            "CI by group; dashed line: overall."})
            for attr, panel in (curves.get(t) or {}).items():
                view["figures"].append({"svg": _km_plot(panel, f"{anchor}-km-{slug(attr)}",
                                                        f"Kaplan-Meier curves by {attr}: {t}"),
                                        "caption": f"Kaplan-Meier curves by {attr}."})
                for h in hs:
                    svg = _cal_plot(panel, h, f"{anchor}-cal-{slug(attr)}-{h}",
                                    f"Calibration at {h} by {attr}: {t}")
                    if svg:
                        view["figures"].append({"svg": svg, "caption": (
                            f"Calibration at horizon {h} by {attr}: observed vs mean "
                            "predicted risk in risk fifths; dotted line: perfect.")})
        tasks.append(view)
    return {"tasks": tasks}
