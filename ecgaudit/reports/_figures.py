"""Report figures: matplotlib drawn to deterministic, accessible inline SVG.

Every figure uses the Okabe-Ito colour-blind-safe palette (plus marker shapes, so colour is
never the only cue), carries a ``<title>`` and ``<desc>`` text alternative, and is
byte-identical for identical inputs (fixed ``svg.hashsalt``, no date metadata).
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import matplotlib as mpl
import numpy as np
from markupsafe import Markup
from matplotlib.figure import Figure

from ecgaudit.reports._format import fmt_signed, is_number, metric_label

#: Okabe & Ito (2008) colour-blind-safe palette, black moved last.
OKABE_ITO: Final = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
)
MARKERS: Final = ("o", "s", "^", "D", "v", "P", "X", "*")

_RC: Final[dict[str, Any]] = {
    "svg.hashsalt": "ecgaudit-report",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9.0,
    "axes.edgecolor": "#333333",
    "axes.labelcolor": "#111111",
    "xtick.color": "#111111",
    "ytick.color": "#111111",
    "text.usetex": False,
    "path.simplify": True,
}
_METADATA: Final = {"Date": None, "Creator": "ecgaudit", "Format": None, "Type": None}
_XML_HEAD = re.compile(r"<\?xml[^>]*\?>\s*|<!DOCTYPE[^>]*>\s*|<!--.*?-->\s*", re.DOTALL)
_META_BLOCK = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_ID_REF = re.compile(r'(\bid="|url\(#|xlink:href="#|\bhref="#)([A-Za-z_][\w.-]*)')


def mpl_text(text: str) -> str:
    """Escape user text for matplotlib (a ``$`` would otherwise start math mode)."""
    return str(text).replace("$", r"\$")


def _to_svg(fig: Figure, fig_id: str, title: str, desc: str) -> Markup:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=_METADATA, bbox_inches="tight")
    svg = _META_BLOCK.sub("", _XML_HEAD.sub("", buf.getvalue())).strip()
    # Several figures share one page: make every internal id unique to this figure.
    svg = _ID_REF.sub(lambda m: f"{m.group(1)}{fig_id}-{m.group(2)}", svg)
    tid, did = f"{fig_id}-title", f"{fig_id}-desc"
    head = (
        f'<svg role="img" aria-labelledby="{tid} {did}" class="figure-svg" id="{fig_id}"'
        f' focusable="false"'
    )
    svg = svg.replace("<svg", head, 1)
    close = svg.index(">") + 1
    alt = (
        f'<title id="{tid}">{html.escape(title)}</title>'
        f'<desc id="{did}">{html.escape(desc)}</desc>'
    )
    return Markup(svg[:close] + alt + svg[close:])  # matplotlib escaped every text


def forest_plot(
    rows: Sequence[Mapping[str, Any]],
    *,
    reference: float | None,
    fig_id: str,
    title: str,
    metric: str = "auroc",
    reference_label: str = "overall",
) -> str:
    """Draw a forest plot of one metric by group.

    Parameters
    ----------
    rows : sequence of mapping
        Top to bottom: ``label``, ``attribute``, ``estimate``, ``ci_low``, ``ci_high``,
        ``status`` (``ok``/``unstable``/``insufficient``/``suppressed``), ``note``.
    reference : float or None
        Value of the vertical reference line (the overall estimate).
    fig_id : str
        Unique element id of the figure.
    title : str
        Figure title (also its text alternative).
    metric : str
        Metric identifier (axis label).
    reference_label : str
        What the dashed reference line is (axis label), e.g. ``"overall"`` or ``"no change"``.

    Returns
    -------
    str
        An SVG element.
    """
    attrs = list(dict.fromkeys(str(r["attribute"]) for r in rows))
    colour = {a: OKABE_ITO[i % len(OKABE_ITO)] for i, a in enumerate(attrs)}
    marker = {a: MARKERS[i % len(MARKERS)] for i, a in enumerate(attrs)}
    n = len(rows)
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(6.6, 0.9 + 0.24 * max(n, 1)))
        ax = fig.add_subplot()
        ys = np.arange(n)[::-1]
        lows = [float(r["ci_low"]) for r in rows if is_number(r["ci_low"])]
        highs = [float(r["ci_high"]) for r in rows if is_number(r["ci_high"])]
        lo = min([*lows, reference if reference is not None else 1.0, 0.9]) - 0.02
        hi = max([*highs, *(float(r["estimate"]) for r in rows if is_number(r["estimate"]))],
                 default=1.0) + 0.015
        described = []
        for y, r in zip(ys, rows):
            a = str(r["attribute"])
            if is_number(r["estimate"]):
                est = float(r["estimate"])
                if is_number(r["ci_low"]) and is_number(r["ci_high"]):
                    ax.hlines(y, float(r["ci_low"]), float(r["ci_high"]), color=colour[a], lw=1.6)
                filled = r["status"] == "ok"
                ax.plot(
                    [est], [y], marker=marker[a], ms=6, color=colour[a],
                    markerfacecolor=colour[a] if filled else "white", markeredgewidth=1.4,
                )
                described.append(f"{r['label']} {est:.3f}")
            else:
                ax.text(lo + 0.005, y, mpl_text(str(r["note"])), va="center", ha="left",
                        fontsize=8, color="#444444", style="italic")
                described.append(f"{r['label']} {r['note']}")
        if reference is not None:
            ax.axvline(reference, color="#555555", ls="--", lw=1)
        ax.set_yticks(ys, [mpl_text(str(r["label"])) for r in rows])
        ax.set_ylim(-0.7, n - 0.3)
        ax.set_xlim(lo, hi)
        ax.set_xlabel(f"{metric_label(metric)} (95% CI); dashed line: {reference_label}"
                      "; hollow marker: few events")
        ax.grid(axis="x", color="#dddddd", lw=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        desc = (f"Forest plot of {metric_label(metric)} with 95% confidence intervals by group. "
                + "; ".join(described) + ".")
        return _to_svg(fig, fig_id, title, desc)


def reliability_plot(
    panels: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    fig_id: str,
    title: str,
) -> str:
    """Draw reliability (calibration) curves, one panel per attribute, one line per group.

    Parameters
    ----------
    panels : mapping
        ``{attribute: {group: {"bins": [{"p_mean", "y_mean", "y_low", "y_high", "n"}],
        "smooth": {"p": [...], "y": [...]}}}}`` as produced by the audit.
    fig_id : str
        Unique element id.
    title : str
        Figure title.

    Returns
    -------
    str
        An SVG element.
    """
    names = list(panels)
    cols = min(len(names), 3)
    nrows = (len(names) + cols - 1) // cols
    described = []
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(2.6 * cols + 0.8, 2.7 * nrows + 0.3))
        axes = fig.subplots(nrows, cols, squeeze=False, gridspec_kw={"wspace": 0.3,
                                                                      "hspace": 0.45})
        for k, ax in enumerate(axes.flat):
            if k >= len(names):
                ax.set_visible(False)
                continue
            attr = names[k]
            ax.plot([0, 1], [0, 1], color="#777777", ls=":", lw=1)
            for i, (group, curve) in enumerate(panels[attr].items()):
                c, m = OKABE_ITO[i % len(OKABE_ITO)], MARKERS[i % len(MARKERS)]
                bins = [b for b in curve.get("bins", []) if is_number(b.get("p_mean"))
                        and is_number(b.get("y_mean"))]
                if bins:
                    x = np.array([float(b["p_mean"]) for b in bins])
                    y = np.array([float(b["y_mean"]) for b in bins])
                    lo = np.array([float(b["y_low"]) if is_number(b.get("y_low")) else v
                                   for b, v in zip(bins, y)])
                    hi = np.array([float(b["y_high"]) if is_number(b.get("y_high")) else v
                                   for b, v in zip(bins, y)])
                    ax.errorbar(x, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)],
                                fmt=m, ms=3.5, color=c, elinewidth=0.7, capsize=0,
                                label=mpl_text(group))
                smooth = curve.get("smooth") or {}
                sp = [float(v) for v in smooth.get("p", []) if is_number(v)]
                sy = [float(v) for v in smooth.get("y", []) if is_number(v)]
                if sp and len(sp) == len(sy):
                    ax.plot(sp, sy, color=c, lw=1.2, label=None if bins else mpl_text(group))
                described.append(f"{attr} {group}: {len(bins)} bins")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_aspect("equal")
            ax.set_title(mpl_text(attr), fontsize=9)
            ax.set_xlabel("Predicted probability")
            if k % cols == 0:
                ax.set_ylabel("Observed frequency")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, frameon=False, loc="upper left")
        desc = ("Reliability curves: observed event frequency against predicted probability "
                "per group; the dotted diagonal is perfect calibration. " + "; ".join(described))
        return _to_svg(fig, fig_id, title, desc)


def _text_colour(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "#000000" if lum > 0.45 else "#ffffff"


def disparity_heatmap(
    groups: Sequence[str],
    metrics: Sequence[str],
    values: Sequence[Sequence[float | None]],
    failing: Sequence[Sequence[bool]],
    *,
    fig_id: str,
    title: str,
) -> str:
    """Draw a heat map of differences versus the reference, groups x metrics.

    Parameters
    ----------
    groups : sequence of str
        Row labels.
    metrics : sequence of str
        Metric identifiers (columns).
    values : 2-D sequence
        Difference group minus reference (None where not reported).
    failing : 2-D sequence of bool
        Cells that fail a policy rule (drawn with a thick outline).
    fig_id : str
        Unique element id.
    title : str
        Figure title.

    Returns
    -------
    str
        An SVG element.
    """
    arr = np.array([[float(v) if is_number(v) else np.nan for v in row] for row in values],
                   dtype=float).reshape(len(groups), len(metrics))
    finite = arr[np.isfinite(arr)]
    vmax = max(float(np.max(np.abs(finite))) if finite.size else 0.1, 0.05)
    cmap = mpl.colormaps["PuOr"]
    norm = mpl.colors.Normalize(-vmax, vmax)
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(1.6 + 0.85 * len(metrics), 1.0 + 0.3 * len(groups)))
        ax = fig.add_subplot()
        masked = np.ma.masked_invalid(arr)
        cm = cmap.with_extremes(bad="#eeeeee")
        ax.imshow(masked, cmap=cm, norm=norm, aspect="auto")
        for i in range(len(groups)):
            for j in range(len(metrics)):
                v = arr[i, j]
                if np.isfinite(v):
                    ax.text(j, i, fmt_signed(v, 2), ha="center", va="center", fontsize=7,
                            color=_text_colour(cmap(norm(v))))
                else:
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="#333333")
                if failing[i][j]:
                    ax.add_patch(mpl.patches.Rectangle((j - 0.48, i - 0.48), 0.96, 0.96,
                                                       fill=False, lw=2.2, ec="#000000"))
        ax.set_xticks(range(len(metrics)), [metric_label(m) for m in metrics],
                      rotation=30, ha="right")
        ax.set_yticks(range(len(groups)), [mpl_text(g) for g in groups])
        ax.set_title("Difference: group minus reference (orange lower, purple higher)",
                     fontsize=8.5, loc="left")
        desc = (f"Heat map of differences from the reference group for {len(groups)} groups "
                f"and {len(metrics)} metrics; {int(np.isfinite(arr).sum())} cells have a value; "
                "outlined cells fail a policy rule.")
        return _to_svg(fig, fig_id, title, desc)
