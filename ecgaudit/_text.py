r"""Text made safe for where it goes: terminals, XML, spreadsheets, error messages.

Everything here is pure string handling with no ecgaudit imports, so every layer may use it.

* :func:`visible` - control and escape sequences (ESC, OSC, C1, bidi overrides) are shown
  as ``\\x1b``-style escapes instead of being interpreted by a terminal.
* :func:`xml_safe` - characters XML 1.0 forbids become the same visible escapes.
* :func:`csv_cell` - OWASP CSV-injection rule: a text cell a spreadsheet would run as a
  formula gets a leading apostrophe.
* :func:`show_ids` / :func:`id_examples` - record identifiers appear in messages only when
  ``ECGAUDIT_SHOW_IDS=1`` (CI logs are kept and shared).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

__all__ = [
    "FORMULA_PREFIXES",
    "SHOW_IDS_ENV",
    "csv_cell",
    "id_examples",
    "show_ids",
    "visible",
    "xml_safe",
]

#: Environment variable that lets error messages show record identifiers.
SHOW_IDS_ENV = "ECGAUDIT_SHOW_IDS"
#: First characters that make a spreadsheet treat a cell as a formula (OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# C0 controls except \n and \t, DEL, C1 controls, and Unicode bidi embeddings/overrides and
# isolates (which reorder what a reader sees).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What XML 1.0 does not allow at all (tab, LF and CR are allowed).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: object, *, keep_newlines: bool = True) -> str:
    r"""Return ``text`` with control and escape characters shown, not interpreted.

    Parameters
    ----------
    text : object
        Anything; it is converted with ``str``.
    keep_newlines : bool
        Keep line feeds and tabs as they are (multi-line messages); otherwise escape them.

    Returns
    -------
    str
        E.g. ``"a\\x1b]0;title\\x07b"`` for a string holding an OSC title sequence.
    """
    s = str(text)
    s = _CONTROL.sub(_escape, s)
    if not keep_newlines:
        s = s.replace("\n", "\\n").replace("\t", "\\t")
    return s


def xml_safe(text: str) -> str:
    """Replace every character XML 1.0 forbids (ESC, NUL, ...) with a visible escape.

    Parameters
    ----------
    text : str
        Serialised XML or a value about to be put in XML.

    Returns
    -------
    str
        Text an XML parser accepts.
    """
    return _XML_ILLEGAL.sub(_escape, text)


def csv_cell(value: object) -> object:
    """Neutralise a CSV cell a spreadsheet would evaluate (OWASP CSV injection).

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading
    apostrophe; numbers and other values are returned unchanged.

    Parameters
    ----------
    value : object
        One cell.

    Returns
    -------
    object
        The cell as it should be written.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def show_ids() -> bool:
    """Return True when ``ECGAUDIT_SHOW_IDS`` asks messages to show record identifiers."""
    return os.environ.get(SHOW_IDS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def id_examples(values: Iterable[object], k: int = 5) -> str:
    """Up to ``k`` example identifiers, or a hint when identifiers are hidden.

    Parameters
    ----------
    values : iterable
        Identifiers.
    k : int
        How many to show.

    Returns
    -------
    str
        ``"e.g. ids '7', '9'"`` with ``ECGAUDIT_SHOW_IDS=1``; otherwise
        ``"ids hidden; set ECGAUDIT_SHOW_IDS=1 to list them"``.
    """
    if not show_ids():
        return f"ids hidden; set {SHOW_IDS_ENV}=1 to list them"
    uniq = list(dict.fromkeys(repr(str(v)) for v in values))
    more = f" (+{len(uniq) - k} more)" if len(uniq) > k else ""
    return "e.g. ids " + ", ".join(uniq[:k]) + more
