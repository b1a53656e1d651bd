"""Report figure of the curves along a numeric axis: one panel per metric, one line per group.

Lines are the kernel-weighted estimates, shaded bands the pointwise bootstrap intervals;
withheld grid points are gaps (never interpolated). Same palette, markers and SVG
conventions as :mod:`ecgaudit.reports._figures`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from ecgaudit.reports._figures import _RC, MARKERS, OKABE_ITO, _to_svg, mpl_text
from ecgaudit.reports._format import is_number, metric_label

__all__ = ["curve_plot"]


def _series(rows: Sequence[Mapping[str, Any]], axis: str, key: str) -> np.ndarray:
    return np.array([float(r[key]) if is_number(r.get(key)) else np.nan for r in rows])


def curve_plot(lines: Mapping[str, Sequence[Mapping[str, Any]]], *, axis: str,
               metrics: Sequence[str], fig_id: str, title: str) -> str:
    """Draw metric curves along ``axis``.

    Parameters
    ----------
    lines : mapping
        ``{line label: rows}``; each row a ``curves_by_value`` record (``axis`` value,
        ``metric``, ``estimate``, ``ci_low``, ``ci_high``, ``status``).
    axis : str
        Name of the axis (its values are under this key in every row).
    metrics : sequence of str
        One panel per metric, in order.
    fig_id, title : str
        Element id and title.

    Returns
    -------
    str
        An SVG element.
    """
    described = []
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(2.35 * len(metrics) + 0.6, 2.6))
        axes = fig.subplots(1, len(metrics), squeeze=False,
                            gridspec_kw={"wspace": 0.35})[0]
        for ax, metric in zip(axes, metrics):
            for i, (label, rows) in enumerate(lines.items()):
                sub = sorted((r for r in rows if r["metric"] == metric),
                             key=lambda r: float(r[axis]))
                if not sub:
                    continue
                x = _series(sub, axis, axis)
                y, lo, hi = (_series(sub, axis, k) for k in ("estimate", "ci_low", "ci_high"))
                c, m = OKABE_ITO[i % len(OKABE_ITO)], MARKERS[i % len(MARKERS)]
                band = np.isfinite(lo) & np.isfinite(hi)
                ax.fill_between(x, np.where(band, lo, np.nan), np.where(band, hi, np.nan),
                                color=c, alpha=0.18, lw=0)
                ax.plot(x, y, color=c, lw=1.4, marker=m, ms=2.5, markevery=4,
                        label=mpl_text(label))
                shown = int(np.isfinite(y).sum())
                described.append(f"{metric_label(metric)}, {label}: {shown} of {len(sub)} "
                                 f"points shown")
            ax.set_title(metric_label(metric), fontsize=9)
            ax.set_xlabel(mpl_text(axis))
            if metric != "oe_ratio":
                ax.set_ylim(0, 1.02)
            else:
                ax.axhline(1.0, color="#777777", ls=":", lw=1)
            ax.grid(color="#eeeeee", lw=0.6)
            for side in ("top", "right"):
                ax.spines[side].set_visible(False)
        if axes[0].get_legend_handles_labels()[0]:
            axes[0].legend(fontsize=7, frameon=False, loc="lower left")
        desc = (f"Kernel-smoothed metrics along {axis} with pointwise 95% bootstrap bands; "
                "gaps are withheld points. " + "; ".join(described) + ".")
        return _to_svg(fig, fig_id, title, desc)
