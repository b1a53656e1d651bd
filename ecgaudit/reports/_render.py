"""Render the report view model with the packaged Jinja2 templates."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jinja2

TEMPLATE: str = "report.html.j2"


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Return the report's Jinja2 environment (autoescape on, strict undefined).

    Templates are loaded from the installed package (``ecgaudit/reports/templates``), so
    rendering works from a wheel as well as from a source checkout.
    """
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ecgaudit.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )


def render_view(view: Mapping[str, Any]) -> str:
    """Render a view model (from :func:`ecgaudit.reports._model.build_view`) to HTML.

    Parameters
    ----------
    view : mapping
        The report view model.

    Returns
    -------
    str
        One self-contained HTML document.
    """
    return environment().get_template(TEMPLATE).render(v=view)
