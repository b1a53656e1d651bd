"""Self-contained HTML audit reports an IRB or equity committee can read, print and trust.

>>> html = render_html(result)                               # doctest: +SKIP
>>> write_report(result, "results/report.html", gate=gate)  # doctest: +SKIP

The report is one HTML file with inline CSS and SVG figures: no scripts, no network, no
external fonts. It is built from the result tables only (never from patient rows); small
cells stay suppressed and input files are named by base name only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ecgaudit.io import atomic_write_text
from ecgaudit.reports._figures import forest_plot, reliability_plot
from ecgaudit.reports._model import build_view
from ecgaudit.reports._render import render_view
from ecgaudit.result import AuditResult

__all__ = ["build_view", "forest_plot", "reliability_plot", "render_html", "write_report"]


def render_html(
    result: AuditResult,
    *,
    gate: Mapping[str, Any] | None = None,
    compare: Mapping[str, Any] | None = None,
    templates: str | Path | None = None,
) -> str:
    """Render an audit result as one self-contained HTML document.

    Parameters
    ----------
    result : AuditResult
        The audit result (``ecgaudit.audit(...)`` or ``AuditResult.load(...)``).
    gate : mapping, optional
        A fairness-policy gate result (``GateResult.to_dict()``): its status appears in the
        summary and failing rules are highlighted in the tables.
    compare : mapping, optional
        A comparison with a baseline: ``title``, ``summary`` (scalars) and ``rows``
        (records), shown as its own section.
    templates : str or Path, optional
        An institution's folder of templates overriding the bundled ones (autoescaping,
        strict undefined and the Content-Security-Policy stay on); see ``docs/report.md``.

    Returns
    -------
    str
        The HTML text; identical inputs give identical text.
    """
    return render_view(build_view(result, gate=gate, compare=compare), templates=templates)


def write_report(
    result: AuditResult,
    path: str | Path,
    *,
    gate: Mapping[str, Any] | None = None,
    compare: Mapping[str, Any] | None = None,
    templates: str | Path | None = None,
) -> Path:
    """Render the report and write it atomically.

    Parameters
    ----------
    result : AuditResult
        The audit result.
    path : str or Path
        The HTML file to write (parent folders are created).
    gate : mapping, optional
        A gate result, as for :func:`render_html`.
    compare : mapping, optional
        A baseline comparison, as for :func:`render_html`.
    templates : str or Path, optional
        An institution's template folder, as for :func:`render_html`.

    Returns
    -------
    Path
        The path written.
    """
    out = Path(path)
    atomic_write_text(out, render_html(result, gate=gate, compare=compare,
                                        templates=templates))
    return out
