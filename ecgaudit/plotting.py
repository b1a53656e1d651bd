"""Plots of an audit on a matplotlib ``Axes``: forest plot, reliability curves, heat map.

>>> ax = plot_forest(result, task="AFIB")                     # doctest: +SKIP
>>> plot_reliability(result, task="AFIB", attribute="sex")    # doctest: +SKIP
>>> plot_heatmap(result, task="AFIB", kind="ratio")           # doctest: +SKIP

The ``draw_*`` functions are the drawing code of the HTML report (``ecgaudit.reports``
renders its SVG figures through them), so a notebook figure and the report's figure of
the same result show the same marks. Colours are the Okabe-Ito colour-blind-safe palette,
with marker shapes so colour is never the only cue. Suppressed and insufficient groups get
a text note, never a number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

import matplotlib as mpl
import numpy as np

from ecgaudit.errors import InputError
from ecgaudit.privacy import min_cell_size_of
from ecgaudit.registry import labels
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ecgaudit.result import AuditResult

__all__ = [
    "MARKERS", "OKABE_ITO", "draw_forest", "draw_heatmap", "draw_reliability", "plot_forest",
    "plot_heatmap", "plot_reliability",
]

#: Okabe & Ito (2008) colour-blind-safe palette, black moved last.
OKABE_ITO: Final = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
)
MARKERS: Final = ("o", "s", "^", "D", "v", "P", "X", "*")
#: Heat-map columns (the report's).
HEATMAP_METRICS: Final = ("auroc", "sensitivity", "specificity", "ppv", "npv", "flag_rate")
_LABELS: Final = labels("binary", short=True)


def metric_name(metric: str) -> str:
    """Return a metric's display name (``auroc`` -> ``AUROC``)."""
    return _LABELS.get(metric, metric)


def mpl_text(text: str) -> str:
    """Escape user text for matplotlib (a ``$`` would otherwise start math mode)."""
    return str(text).replace("$", r"\$")


def _num(x: Any) -> bool:
    try:
        return x is not None and np.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _signed(x: float, digits: int) -> str:
    return f"{x:+.{digits}f}".replace("-", "\u2212")


def draw_forest(ax: Axes, rows: Sequence[Mapping[str, Any]], *, reference: float | None,
                metric: str = "auroc", reference_label: str = "overall") -> list[str]:
    """Draw a forest plot of one metric by group on ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    rows : sequence of mapping
        Top to bottom: ``label``, ``attribute``, ``estimate``, ``ci_low``, ``ci_high``,
        ``status`` (``ok``/``unstable``/...), ``note`` (shown instead of a missing estimate).
    reference : float or None
        Value of the dashed vertical reference line.
    metric : str
        Metric identifier (axis label).
    reference_label : str
        What the dashed line is, e.g. ``"overall"`` or ``"no change"``.

    Returns
    -------
    list of str
        One text description per row (the figure's text alternative).
    """
    attrs = list(dict.fromkeys(str(r["attribute"]) for r in rows))
    colour = {a: OKABE_ITO[i % len(OKABE_ITO)] for i, a in enumerate(attrs)}
    marker = {a: MARKERS[i % len(MARKERS)] for i, a in enumerate(attrs)}
    n = len(rows)
    ys = np.arange(n)[::-1]
    lows = [float(r["ci_low"]) for r in rows if _num(r["ci_low"])]
    highs = [float(r["ci_high"]) for r in rows if _num(r["ci_high"])]
    lo = min([*lows, reference if reference is not None else 1.0, 0.9]) - 0.02
    hi = max([*highs, *(float(r["estimate"]) for r in rows if _num(r["estimate"]))],
             default=1.0) + 0.015
    described = []
    for y, r in zip(ys, rows):
        a = str(r["attribute"])
        if _num(r["estimate"]):
            est = float(r["estimate"])
            if _num(r["ci_low"]) and _num(r["ci_high"]):
                ax.hlines(y, float(r["ci_low"]), float(r["ci_high"]), color=colour[a], lw=1.6)
            filled = r["status"] == "ok"
            ax.plot([est], [y], marker=marker[a], ms=6, color=colour[a],
                    markerfacecolor=colour[a] if filled else "white", markeredgewidth=1.4)
            described.append(f"{r['label']} {est:.3f}")
        else:
            ax.text(lo + 0.005, y, mpl_text(str(r["note"])), va="center", ha="left",
                    fontsize=8.5, color="#444444", style="italic")
            described.append(f"{r['label']} {r['note']}")
    if reference is not None:
        ax.axvline(reference, color="#555555", ls="--", lw=1)
    ax.set_yticks(ys, [mpl_text(str(r["label"])) for r in rows])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(lo, hi)
    ax.set_xlabel(f"{metric_name(metric)} (95% CI); dashed: {reference_label}"
                  "; hollow: few events")
    ax.grid(axis="x", color="#dddddd", lw=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return described


def draw_reliability(ax: Axes, curves: Mapping[str, Mapping[str, Any]], *, title: str = "",
                     ylabel: bool = True) -> list[str]:
    """Draw the reliability curves of one attribute's groups on ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    curves : mapping
        ``{group: {"bins": [{"p_mean", "y_mean", "y_low", "y_high", "n"}], "smooth":
        {"p": [...], "y": [...]}}}`` as the audit stores under ``extras["curves"]``.
    title : str
        Panel title (the attribute).
    ylabel : bool
        Whether to label the y axis.

    Returns
    -------
    list of str
        One text description per group.
    """
    described = []
    ax.plot([0, 1], [0, 1], color="#777777", ls=":", lw=1)
    for i, (group, curve) in enumerate(curves.items()):
        c, m = OKABE_ITO[i % len(OKABE_ITO)], MARKERS[i % len(MARKERS)]
        bins = [b for b in curve.get("bins", []) if _num(b.get("p_mean"))
                and _num(b.get("y_mean"))]
        if bins:
            x = np.array([float(b["p_mean"]) for b in bins])
            y = np.array([float(b["y_mean"]) for b in bins])
            lo = np.array([float(b["y_low"]) if _num(b.get("y_low")) else v
                           for b, v in zip(bins, y)])
            hi = np.array([float(b["y_high"]) if _num(b.get("y_high")) else v
                           for b, v in zip(bins, y)])
            ax.errorbar(x, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], fmt=m,
                        ms=3.5, color=c, elinewidth=0.7, capsize=0, label=mpl_text(group))
        smooth = curve.get("smooth") or {}
        sp = [float(v) for v in smooth.get("p", []) if _num(v)]
        sy = [float(v) for v in smooth.get("y", []) if _num(v)]
        if sp and len(sp) == len(sy):
            ax.plot(sp, sy, color=c, lw=1.2, label=None if bins else mpl_text(group))
        described.append(f"{title} {group}: {len(bins)} bins")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    if title:
        ax.set_title(mpl_text(title), fontsize=9)
    ax.set_xlabel("Predicted probability")
    if ylabel:
        ax.set_ylabel("Observed frequency")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8.5, frameon=False, loc="upper left")
    return described


def _text_colour(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    return "#000000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#ffffff"


def draw_heatmap(ax: Axes, groups: Sequence[str], metrics: Sequence[str],
                 values: Sequence[Sequence[float | None]],
                 failing: Sequence[Sequence[bool]] | None = None, *, centre: float = 0.0,
                 fmt: Callable[[float], str] | None = None, fontsize: float = 9.0,
                 title: str = "Difference: group minus reference (orange lower, purple higher)"
                 ) -> int:
    """Draw a heat map of groups x metrics (differences or ratios vs the reference) on ``ax``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    groups, metrics : sequence of str
        Row labels; metric identifiers (columns).
    values : 2-D sequence
        One value per cell (None where not reported).
    failing : 2-D sequence of bool, optional
        Cells that fail a policy rule (drawn with a thick outline).
    centre : float
        The value of "no difference" (0 for differences, 1 for ratios).
    fmt : callable, optional
        Cell text of a value (default: signed, 2 decimals, relative to ``centre`` = 0).
    fontsize : float
        Size of the cell values in points.
    title : str
        Axes title.

    Returns
    -------
    int
        The number of cells with a value.
    """
    fmt = fmt or (lambda v: _signed(v, 2))
    arr = np.array([[float(v) if _num(v) else np.nan for v in row] for row in values],
                   dtype=float).reshape(len(groups), len(metrics))
    finite = arr[np.isfinite(arr)] - centre
    vmax = max(float(np.max(np.abs(finite))) if finite.size else 0.1, 0.05)
    cmap = mpl.colormaps["PuOr"]
    norm = mpl.colors.Normalize(centre - vmax, centre + vmax)
    ax.imshow(np.ma.masked_invalid(arr), cmap=cmap.with_extremes(bad="#eeeeee"), norm=norm,
              aspect="auto")
    for i in range(len(groups)):
        for j in range(len(metrics)):
            v = arr[i, j]
            if np.isfinite(v):
                ax.text(j, i, fmt(v), ha="center", va="center", fontsize=fontsize,
                        color=_text_colour(cmap(norm(v))))
            else:
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=fontsize,
                        color="#333333")
            if failing is not None and failing[i][j]:
                ax.add_patch(mpl.patches.Rectangle((j - 0.48, i - 0.48), 0.96, 0.96,
                                                   fill=False, lw=2.2, ec="#000000"))
    ax.set_xticks(range(len(metrics)), [metric_name(m) for m in metrics], rotation=30,
                  ha="right")
    ax.set_yticks(range(len(groups)), [mpl_text(g) for g in groups])
    ax.set_title(title, fontsize=9, loc="left")
    return int(np.isfinite(arr).sum())


# -- helpers on an AuditResult -------------------------------------------------------------

def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # only for interactive use; the report never uses pyplot

    return plt.subplots(figsize=size)[1]


def _task(result: AuditResult, task: str | None) -> str:
    tasks = list(dict.fromkeys(result.metrics["task"]))
    if task is None:
        if len(tasks) != 1:
            raise InputError(f"the audit has {len(tasks)} tasks ({', '.join(map(str, tasks))});"
                             " choose one with task=...")
        return str(tasks[0])
    if task not in tasks:
        raise InputError(f"unknown task '{task}'; the audit has: {', '.join(map(str, tasks))}")
    return task


def _note(status: str, reason: Any, min_cell: int) -> str:
    if status == "suppressed":
        return f"suppressed (n < {min_cell})"
    return f"insufficient: {reason or 'not estimable'}"


def plot_forest(result: AuditResult, task: str | None = None, metric: str = "auroc", *,
                ax: Axes | None = None, intersections: bool = False) -> Axes:
    """Forest plot of ``metric`` by group (overall first), as in the report.

    Parameters
    ----------
    result : AuditResult
        The audit.
    task : str, optional
        The task (required when the audit has several).
    metric : str
        Metric identifier.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    intersections : bool
        Include intersection groups (the report leaves them to the tables).

    Returns
    -------
    matplotlib.axes.Axes
    """
    task = _task(result, task)
    m = result.metrics
    sub = m[(m["task"] == task) & (m["metric"] == metric)]
    if sub.empty:
        raise InputError(f"no '{metric}' rows for task '{task}'")
    if not intersections:
        sub = sub[~sub["attribute"].astype(str).str.contains(INTERSECTION_SEP, regex=False)]
    min_cell = min_cell_size_of(result)
    rows = []
    for r in sub.to_dict("records"):
        est = r["estimate"] if r["status"] in ("ok", "unstable") else None
        rows.append({
            "label": "Overall" if r["attribute"] == OVERALL_ATTRIBUTE
            else f"{r['attribute']}: {r['group']}",
            "attribute": r["attribute"], "estimate": est,
            "ci_low": r["ci_low"] if est is not None else None,
            "ci_high": r["ci_high"] if est is not None else None, "status": r["status"],
            "note": "" if est is not None else _note(r["status"], r["reason"], min_cell)})
    overall = sub[sub["attribute"] == OVERALL_ATTRIBUTE]["estimate"]
    ax = _axes(ax, (6.0, 0.9 + 0.26 * len(rows)))
    draw_forest(ax, rows, reference=float(overall.iloc[0]) if len(overall) and _num(
        overall.iloc[0]) else None, metric=metric)
    ax.set_title(f"{metric_name(metric)} by group: {task}", fontsize=10, loc="left")
    return ax


def plot_reliability(result: AuditResult, task: str | None = None,
                     attribute: str = OVERALL_ATTRIBUTE, *, ax: Axes | None = None) -> Axes:
    """Reliability curves of one attribute's groups (``extras["curves"]`` of the audit).

    Parameters
    ----------
    result : AuditResult
        The audit.
    task : str, optional
        The task (required when the audit has several).
    attribute : str
        The attribute whose groups are drawn (default: the whole cohort).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    task = _task(result, task)
    curves = (result.extras.get("curves") or {}).get(task) or {}
    if attribute not in curves:
        raise InputError(f"no reliability curves for attribute '{attribute}' of task "
                         f"'{task}'; available: {', '.join(curves) or 'none'}")
    ax = _axes(ax, (4.0, 4.0))
    draw_reliability(ax, curves[attribute], title=f"{task}: {attribute}")
    return ax


def plot_heatmap(result: AuditResult, task: str | None = None,
                 kind: Literal["difference", "ratio"] = "difference",
                 metrics: Sequence[str] = HEATMAP_METRICS, *, ax: Axes | None = None) -> Axes:
    """Heat map of each group's difference (or ratio) versus its reference, as in the report.

    Parameters
    ----------
    result : AuditResult
        The audit.
    task : str, optional
        The task (required when the audit has several).
    kind : {"difference", "ratio"}
        What the cells show.
    metrics : sequence of str
        Columns.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if kind not in ("difference", "ratio"):
        raise InputError(f"kind must be 'difference' or 'ratio', not {kind!r}")
    task = _task(result, task)
    d = result.disparities
    sub = d[(d["task"] == task)
            & ~d["attribute"].astype(str).str.contains(INTERSECTION_SEP, regex=False)]
    index = {(a, g, m): v for a, g, m, v in zip(sub["attribute"], sub["group"], sub["metric"],
                                                sub[kind])}
    pairs = list(dict.fromkeys(zip(sub["attribute"], sub["group"])))
    values = [[index.get((a, g, m)) for m in metrics] for a, g in pairs]
    ax = _axes(ax, (1.6 + 0.85 * len(metrics), 1.0 + 0.3 * len(pairs)))
    if kind == "ratio":
        draw_heatmap(ax, [f"{a}: {g}" for a, g in pairs], metrics, values, centre=1.0,
                     fmt=lambda v: f"{v:.2f}",
                     title="Ratio: group / reference (orange lower, purple higher)")
    else:
        draw_heatmap(ax, [f"{a}: {g}" for a, g in pairs], metrics, values)
    return ax
