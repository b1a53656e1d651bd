"""Render the report view model with Jinja2: the bundled templates or an institution's own.

The bundled templates live in the repository's top-level ``reports/templates/`` and ship in
the wheel as ``ecgaudit/reports/templates/`` (mapped in ``setup.py``). An institution can
render with its own folder of templates (``--templates DIR``): a file there overrides the
bundled file of the same name (``report.html.j2``, ``report.css`` or a partial), the rest
comes from the bundled set. Whatever the templates say, autoescaping stays on (an
``{% autoescape %}`` block is refused), undefined variables are errors, templates are read
only from inside the folders, and the Content-Security-Policy meta tag is always present.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension

from ecgaudit.errors import InputError

TEMPLATE: str = "report.html.j2"

#: Scripts and network loads are forbidden even if markup were injected.
CSP_META: str = (
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
)

_PACKAGED = Path(__file__).resolve().parent / "templates"
_SOURCE = Path(__file__).resolve().parents[2] / "reports" / "templates"


def bundled_template_dir() -> Path:
    """Return the folder of the bundled templates.

    Inside an installed wheel this is ``ecgaudit/reports/templates``; in a source checkout
    it is the repository's ``reports/templates``.
    """
    for folder in (_PACKAGED, _SOURCE):
        if (folder / TEMPLATE).is_file():
            return folder
    raise FileNotFoundError(f"report templates not found in {_PACKAGED} or {_SOURCE}")


class _NoAutoescapeSwitch(Extension):
    """Refuse ``{% autoescape false %}`` in any template, and ``safe`` in custom ones.

    The figures reach the templates as markup already, so a custom template never needs
    ``|safe``; refusing it keeps every value of the view model escaped.
    """

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment)
        environment.extend(custom_template_root=None)

    def filter_stream(self, stream: jinja2.lexer.TokenStream) -> Any:
        root = self.environment.custom_template_root  # type: ignore[attr-defined]
        custom = root is not None and stream.filename is not None and Path(
            os.path.realpath(stream.filename)).is_relative_to(root)
        for token in stream:
            if token.type == "name" and token.value == "autoescape":
                raise jinja2.TemplateSyntaxError(
                    "templates may not switch autoescaping", token.lineno, stream.name,
                    stream.filename)
            if custom and token.type == "name" and token.value == "safe":
                raise jinja2.TemplateSyntaxError(
                    "custom templates may not mark text safe (figures are markup already)",
                    token.lineno, stream.name, stream.filename)
            yield token

    def parse(self, parser: jinja2.parser.Parser) -> nodes.Node:  # pragma: no cover
        raise NotImplementedError


class _ConfinedLoader(jinja2.FileSystemLoader):
    """A file loader that never reads a file whose real path is outside its folder."""

    def get_source(self, environment: jinja2.Environment, template: str
                   ) -> tuple[str, str, Any]:
        source, filename, uptodate = super().get_source(environment, template)
        root = Path(self.searchpath[0]).resolve()
        if not Path(os.path.realpath(filename)).is_relative_to(root):
            raise jinja2.TemplateNotFound(template)
        return source, filename, uptodate


def _make_environment(folders: tuple[Path, ...], custom: Path | None = None
                      ) -> jinja2.Environment:
    loader = jinja2.ChoiceLoader([_ConfinedLoader(str(f)) for f in folders])
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=[_NoAutoescapeSwitch],
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.custom_template_root = custom  # type: ignore[attr-defined]
    return env


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """Return the bundled report's Jinja2 environment (autoescape on, strict undefined)."""
    return _make_environment((bundled_template_dir(),))


def template_environment(templates: str | Path | None = None) -> jinja2.Environment:
    """Return the environment for an institution's template folder (or the bundled one).

    Parameters
    ----------
    templates : str or Path, optional
        A folder of templates overriding the bundled files of the same names.

    Raises
    ------
    InputError
        If the folder does not exist.
    """
    if templates is None:
        return environment()
    folder = Path(templates)
    if not folder.is_dir():
        raise InputError(f"--templates '{folder.name}' is not a folder of report templates; "
                         f"copy {bundled_template_dir().name}/ from the ecgaudit repository "
                         "(reports/templates) and edit the copy")
    root = folder.resolve()
    return _make_environment((root, bundled_template_dir()), custom=root)


def _with_csp(html: str) -> str:
    if CSP_META in html:
        return html
    lower = html.lower()
    start = lower.find("<head")
    end = lower.find(">", start) if start >= 0 else -1
    if end < 0:
        raise InputError("the report template has no <head> element: the "
                         "Content-Security-Policy cannot be applied")
    return html[: end + 1] + "\n" + CSP_META + html[end + 1:]


def render_view(view: Mapping[str, Any], templates: str | Path | None = None) -> str:
    """Render a view model (from :func:`ecgaudit.reports._model.build_view`) to HTML.

    Parameters
    ----------
    view : mapping
        The report view model.
    templates : str or Path, optional
        An institution's template folder (see the module docstring).

    Returns
    -------
    str
        One self-contained HTML document.

    Raises
    ------
    InputError
        If a custom template is missing, cannot be parsed, switches autoescaping, reads
        outside its folder or uses an undefined variable.
    """
    env = template_environment(templates)
    if templates is None:
        return env.get_template(TEMPLATE).render(v=view)
    try:
        html = env.get_template(TEMPLATE).render(v=view)
    except jinja2.TemplateNotFound as err:
        raise InputError(f"report template '{err.name}' not found in --templates "
                         f"'{Path(templates).name}' (templates are read only from inside "
                         "that folder)") from None
    except jinja2.TemplateSyntaxError as err:
        raise InputError(f"report template '{Path(err.filename or TEMPLATE).name}' line "
                         f"{err.lineno}: {err.message}") from None
    except jinja2.UndefinedError as err:
        raise InputError(f"report template: {err.message} (see docs/report.md for the "
                         "variables of the view model)") from None
    return _with_csp(html)
