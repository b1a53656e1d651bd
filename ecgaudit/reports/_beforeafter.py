"""The before/after page of a fine-tuning run: deltas by group and calibration before vs after.

One self-contained HTML file (inline SVG, no scripts), rendered with Jinja2 autoescaping. It
is built from the comparison table (groups below the minimum cell size carry no numbers) and
from equal-mass calibration bins of the whole held-out set (every bin holds at least
``min_cell_size`` records; computed by :func:`ecgaudit.metrics.calibration_bins`); it names
no patient, record or file path. This module renders only: every number arrives computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from ecgaudit.io import atomic_write_text
from ecgaudit.policy import Comparison, GateResult
from ecgaudit.reports._figures import forest_plot, reliability_plot

__all__ = ["render_before_after", "write_before_after"]

_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Before/after fine-tuning: {{ strategy }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}.warn{background:#fff3cd;padding:.6rem;
border-left:4px solid #b8860b}.fail{color:#a00;font-weight:bold}</style></head><body>
<h1>Before/after fine-tuning ({{ strategy }})</h1>
<p>Parent model: {{ parent }}. Held-out site patients (never used for fine-tuning), scored by
the parent and the adapted model and audited with the same configuration.</p>
{% if warning %}<p class="warn"><strong>Warning:</strong> {{ warning }}</p>{% endif %}
<h2>Gate: <span class="{{ 'fail' if gate_status == 'fail' else '' }}">{{ gate_status }}</span></h2>
<p>Policy '{{ policy }}': {{ gate_counts }}.</p>
<h2>{{ metric }} before and after (95% CI)</h2>
<table><tr><th>task</th><th>before</th><th>after</th><th>paired change</th></tr>
{% for r in overall %}<tr><td>{{ r.task }}</td><td>{{ r.before }}</td><td>{{ r.after }}</td>
<td>{{ r.change }}</td></tr>{% endfor %}</table>
{% for f in forests %}<h3>{{ f.title }}</h3>{{ f.svg | safe }}{% endfor %}
{% if calibration %}<h2>Calibration before and after (all held-out records)</h2>
{{ calibration | safe }}{% endif %}
<h2>Methods</h2><ul>{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>
</body></html>
"""


def _ci(rec: Mapping[str, Any]) -> str:
    if rec.get("estimate") is None:
        return f"- ({rec.get('status')})"
    return f"{rec['estimate']:.3f} [{rec['ci_low']:.3f}, {rec['ci_high']:.3f}]"


def _change(rec: Mapping[str, Any]) -> str:
    if rec.get("change") is None:
        return f"- ({rec.get('status')})"
    lo, hi = rec.get("change_ci_low"), rec.get("change_ci_high")
    ci = f" [{lo:+.3f}, {hi:+.3f}]" if lo is not None and hi is not None else ""
    return f"{rec['change']:+.3f}{ci}"


def render_before_after(
    *,
    strategy: str,
    parent: str,
    summary: Mapping[str, Any],
    comparison: Comparison,
    gate: GateResult,
    calibration: Mapping[str, Mapping[str, Sequence[Mapping[str, float]]]] | None = None,
) -> str:
    """Render the before/after HTML page.

    Parameters
    ----------
    strategy : str
        The fine-tuning strategy.
    parent : str
        The parent model's name (no path).
    summary : mapping
        From :func:`ecgaudit.pipeline.summarize_before_after`.
    comparison : Comparison
        The paired comparison (its notes go to the methods list).
    gate : GateResult
        The no-group-worse gate.
    calibration : mapping, optional
        ``{task: {"before": bins, "after": bins}}`` from
        :func:`ecgaudit.metrics.calibration_bins`.

    Returns
    -------
    str
        HTML; identical inputs give identical text.
    """
    metric = str(summary["metric"])
    forests = []
    for i, task in enumerate(dict.fromkeys(str(g["task"]) for g in summary["groups"])):
        rows = [{"label": f"{g['attribute']}={g['group']}", "attribute": g["attribute"],
                 "estimate": g["change"], "ci_low": g["change_ci_low"],
                 "ci_high": g["change_ci_high"],
                 "status": "ok" if g["change"] is not None else str(g["status"]),
                 "note": str(g["status"])}
                for g in summary["groups"] if g["task"] == task]
        title = f"{task}: change in {metric} by group (after - before); dashed line: no change"
        forests.append({"title": title, "svg": forest_plot(
            rows, reference=0.0, fig_id=f"delta-{i}", title=title, metric=metric,
            reference_label="no change")})
    calib = None
    if calibration:
        panels = {t: {k: {"bins": list(v)} for k, v in c.items()} for t, c in calibration.items()}
        calib = reliability_plot(panels, fig_id="calibration-before-after",
                                 title="Reliability before and after fine-tuning")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    counts = ", ".join(f"{v} {k}" for k, v in gate.summary.items())
    return env.from_string(_TEMPLATE).render(
        strategy=strategy, parent=parent, warning=summary.get("warning"),
        gate_status=gate.status, policy=gate.policy_name, gate_counts=counts, metric=metric,
        overall=[{"task": r["task"], "before": _ci(r["before"]), "after": _ci(r["after"]),
                  "change": _change(r)} for r in summary["overall"]
                 if r.get("task") is not None],
        forests=forests, calibration=calib,
        notes=[*comparison.notes, "Groups with fewer than the minimum cell size of patients "
               "are suppressed; 'insufficient' groups have too few events for the metric."],
    )


def write_before_after(path: str | Path, **kwargs: Any) -> Path:
    """Render (see :func:`render_before_after`) and write the page atomically."""
    return atomic_write_text(path, render_before_after(**kwargs))


