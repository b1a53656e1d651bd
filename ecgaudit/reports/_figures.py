"""Report figures: the Axes functions of :mod:`ecgaudit.plotting` drawn to inline SVG.

The drawing code is :mod:`ecgaudit.plotting`'s (the same a notebook user calls); this
module sizes the figures, turns them into deterministic, accessible SVG (a ``<title>`` and
``<desc>`` text alternative, fixed ``svg.hashsalt``, no date metadata, ids prefixed by the
figure's id) and gives each a minimum on-screen width so that its text stays at least
~9 CSS px on a phone (the figure box scrolls sideways instead of shrinking the text).
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import matplotlib as mpl
from markupsafe import Markup
from matplotlib.figure import Figure

from ecgaudit.plotting import (
    MARKERS,
    OKABE_ITO,
    draw_forest,
    draw_heatmap,
    draw_reliability,
    mpl_text,
)
from ecgaudit.reports._format import fmt_signed, metric_label

__all__ = ["MARKERS", "OKABE_ITO", "disparity_heatmap", "forest_plot", "mpl_text",
           "reliability_plot"]

#: The smallest on-screen scale of a figure (9 pt text stays >= 9.6 CSS px).
MIN_SCALE: Final = 0.8

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
_WIDTH = re.compile(r'<svg[^>]*?\swidth="([0-9.]+)pt"')


def _to_svg(fig: Figure, fig_id: str, title: str, desc: str) -> Markup:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=_METADATA, bbox_inches="tight")
    svg = _META_BLOCK.sub("", _XML_HEAD.sub("", buf.getvalue())).strip()
    # Several figures share one page: make every internal id unique to this figure.
    svg = _ID_REF.sub(lambda m: f"{m.group(1)}{fig_id}-{m.group(2)}", svg)
    tid, did = f"{fig_id}-title", f"{fig_id}-desc"
    width = _WIDTH.search(svg)
    min_px = round(float(width.group(1)) * 4 / 3 * MIN_SCALE) if width else 0
    head = (
        f'<svg role="img" aria-labelledby="{tid} {did}" class="figure-svg" id="{fig_id}"'
        f' focusable="false" style="min-width:{min_px}px"'
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
) -> Markup:
    """Draw a forest plot of one metric by group (:func:`ecgaudit.plotting.draw_forest`).

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
    Markup
        An SVG element.
    """
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(5.6, 0.9 + 0.26 * max(len(rows), 1)))
        described = draw_forest(fig.add_subplot(), rows, reference=reference, metric=metric,
                                reference_label=reference_label)
        desc = (f"Forest plot of {metric_label(metric)} with 95% confidence intervals by group. "
                + "; ".join(described) + ".")
        return _to_svg(fig, fig_id, title, desc)


def reliability_plot(
    panels: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    fig_id: str,
    title: str,
) -> Markup:
    """Draw reliability curves, one panel per attribute (``plotting.draw_reliability``).

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
    Markup
        An SVG element.
    """
    names = list(panels)
    cols = min(len(names), 3)
    nrows = (len(names) + cols - 1) // cols
    described = []
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(2.4 * cols + 0.6, 2.6 * nrows + 0.3))
        axes = fig.subplots(nrows, cols, squeeze=False, gridspec_kw={"wspace": 0.3,
                                                                      "hspace": 0.45})
        for k, ax in enumerate(axes.flat):
            if k >= len(names):
                ax.set_visible(False)
                continue
            described += draw_reliability(ax, panels[names[k]], title=names[k],
                                          ylabel=k % cols == 0)
        desc = ("Reliability curves: observed event frequency against predicted probability "
                "per group; the dotted diagonal is perfect calibration. " + "; ".join(described))
        return _to_svg(fig, fig_id, title, desc)


def disparity_heatmap(
    groups: Sequence[str],
    metrics: Sequence[str],
    values: Sequence[Sequence[float | None]],
    failing: Sequence[Sequence[bool]],
    *,
    fig_id: str,
    title: str,
) -> Markup:
    """Draw a heat map of differences versus the reference (``plotting.draw_heatmap``).

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
    Markup
        An SVG element.
    """
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(1.4 + 0.8 * len(metrics), 1.0 + 0.32 * len(groups)))
        cells = draw_heatmap(fig.add_subplot(), groups, metrics, values, failing,
                             fmt=lambda v: fmt_signed(v, 2))
        desc = (f"Heat map of differences from the reference group for {len(groups)} groups "
                f"and {len(metrics)} metrics; {cells} cells have a value; "
                "outlined cells fail a policy rule.")
        return _to_svg(fig, fig_id, title, desc)
