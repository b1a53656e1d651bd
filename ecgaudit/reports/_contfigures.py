"""Figures of continuous tasks: binned Bland-Altman and calibration plots by group.

Drawn from the aggregated bins in ``extras["continuous"]`` (no individual values), in the
style of :mod:`ecgaudit.reports._figures` (Okabe-Ito colours plus marker shapes, text
alternative, deterministic SVG).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

from ecgaudit.reports._figures import _RC, MARKERS, OKABE_ITO, _to_svg, mpl_text

__all__ = ["bland_altman_plot", "calibration_plot"]


def _style(i: int) -> dict[str, Any]:
    return {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": MARKERS[i % len(MARKERS)]}


def bland_altman_plot(groups: Sequence[Mapping[str, Any]], biases: Mapping[str, float],
                      *, fig_id: str, title: str) -> str:
    """Binned Bland-Altman plot: mean difference against mean value, one line per group.

    Parameters
    ----------
    groups : sequence of mapping
        ``group`` and ``ba`` (``mean``, ``diff``, ``sd`` lists) per group of one attribute.
    biases : mapping
        Group -> overall bias of the group (dashed horizontal line).
    fig_id, title : str
        Element id and title.

    Returns
    -------
    str
        An SVG element.
    """
    described = []
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(6.6, 3.4))
        ax = fig.add_subplot()
        ax.axhline(0.0, color="#555555", lw=1, ls=":")
        for i, g in enumerate(groups):
            st = _style(i)
            ba = g["ba"]
            label = mpl_text(str(g["group"]))
            ax.plot(ba["mean"], ba["diff"], lw=1.4, ms=5, label=label, **st)
            bias = biases.get(str(g["group"]))
            if bias is not None:
                ax.axhline(bias, color=st["color"], lw=1, ls="--")
                described.append(f"{g['group']}: bias {bias:.3g}")
        ax.set_xlabel("mean of predicted and measured (bins of equal size)")
        ax.set_ylabel("predicted - measured (bin mean)")
        ax.grid(color="#dddddd", lw=0.6)
        ax.set_axisbelow(True)
        ax.legend(frameon=False, fontsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        desc = ("Binned Bland-Altman plot: mean difference between predicted and measured "
                "values against their mean, per group; dashed lines: each group's bias; "
                "dotted line: no difference. " + "; ".join(described) + ".")
        return _to_svg(fig, fig_id, title, desc)


def calibration_plot(groups: Sequence[Mapping[str, Any]], *, fig_id: str, title: str) -> str:
    """Binned calibration plot: mean measured against mean predicted, one line per group.

    Parameters
    ----------
    groups : sequence of mapping
        ``group`` and ``cal`` (``pred``, ``meas``, ``low``, ``high`` lists) per group.
    fig_id, title : str
        Element id and title.

    Returns
    -------
    str
        An SVG element.
    """
    lo = min(min(g["cal"]["pred"] + g["cal"]["low"]) for g in groups)
    hi = max(max(g["cal"]["pred"] + g["cal"]["high"]) for g in groups)
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(4.6, 4.2))
        ax = fig.add_subplot()
        ax.plot([lo, hi], [lo, hi], color="#555555", lw=1, ls=":")
        for i, g in enumerate(groups):
            st = _style(i)
            c = g["cal"]
            ax.vlines(c["pred"], c["low"], c["high"], color=st["color"], lw=1)
            ax.plot(c["pred"], c["meas"], lw=1.4, ms=5, label=mpl_text(str(g["group"])), **st)
        ax.set_xlabel("predicted (bin mean)")
        ax.set_ylabel("measured (bin mean, 95% CI)")
        ax.grid(color="#dddddd", lw=0.6)
        ax.set_axisbelow(True)
        ax.legend(frameon=False, fontsize=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        desc = ("Calibration plot: mean measured value against mean predicted value in bins "
                "of predicted values, per group, with 95% intervals; dotted diagonal: "
                "perfect agreement. Groups: " + ", ".join(str(g["group"]) for g in groups)
                + ".")
        return _to_svg(fig, fig_id, title, desc)
