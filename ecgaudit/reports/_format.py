"""Number and label formatting shared by the report view model and its figures.

Every number shown in the report goes through :func:`fmt_num`, so a test can reproduce the
displayed text from ``metrics.csv`` with ``f"{value:.3f}"``.
"""

from __future__ import annotations

import math
from pathlib import PureWindowsPath
from typing import Any, Final

from ecgaudit.registry import REGISTRY, directional, labels
from ecgaudit.schema import INTERSECTION_SEP

#: Decimal places of every estimate and interval bound shown in the report.
DECIMALS: Final = 3

#: Human names of the metric identifiers (``ecgaudit.schema.METRICS``).
METRIC_LABELS: Final[dict[str, str]] = labels("binary")

#: One-line plain-language definitions (Methods section).
METRIC_DEFINITIONS: Final[dict[str, str]] = {
    s.name: s.definition for s in REGISTRY.select("binary")}

#: Metrics whose larger value is better (used to phrase findings).
HIGHER_IS_BETTER: Final = directional("higher", ("binary",))


def is_number(value: Any) -> bool:
    """Return True if ``value`` is a finite real number (not None, NaN, NA or inf)."""
    if value is None or isinstance(value, bool):
        return False
    try:
        f = float(value)
    except (TypeError, ValueError):
        return False
    return math.isfinite(f)


def fmt_num(value: Any, decimals: int = DECIMALS) -> str:
    """Format an estimate for display (``"0.912"``); missing values give ``"–"``.

    Parameters
    ----------
    value : float or None
        The number.
    decimals : int
        Decimal places.

    Returns
    -------
    str
    """
    if not is_number(value):
        return "–"
    text = f"{float(value):.{decimals}f}"
    return "0." + "0" * decimals if text == "-0." + "0" * decimals else text


def fmt_signed(value: Any, decimals: int = DECIMALS) -> str:
    """Format a difference with an explicit sign (``"+0.050"``, ``"-0.120"``)."""
    if not is_number(value):
        return "–"
    text = fmt_num(value, decimals)
    return text if text.startswith("-") or float(text) == 0 else "+" + text


def fmt_ci(low: Any, high: Any, decimals: int = DECIMALS) -> str:
    """Format an interval as ``"0.901 to 0.923"`` (empty when either bound is missing)."""
    if not (is_number(low) and is_number(high)):
        return ""
    return f"{fmt_num(low, decimals)} to {fmt_num(high, decimals)}"


def fmt_int(value: Any) -> str:
    """Format a count (``"1234"``); missing gives ``"–"``."""
    return str(int(value)) if is_number(value) else "–"


def fmt_pct(num: Any, den: Any, decimals: int = 1) -> str:
    """Format ``num / den`` as a percentage (``"12.5%"``); missing gives ``"–"``."""
    if not (is_number(num) and is_number(den)) or float(den) == 0:
        return "–"
    return f"{100.0 * float(num) / float(den):.{decimals}f}%"


def fmt_p(value: Any) -> str:
    """Format a p-value (``"0.003"``, ``"<0.001"``)."""
    if not is_number(value):
        return "–"
    v = float(value)
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def metric_label(metric: str) -> str:
    """Return the display name of a metric identifier (unknown ids are shown as given)."""
    return METRIC_LABELS.get(metric, metric)


def group_phrase(attribute: str, group: str) -> str:
    """Describe a group in words: ``"age 40-59, sex female"`` for an intersection.

    Parameters
    ----------
    attribute : str
        Attribute name, intersections joined with ``" & "``.
    group : str
        Group value(s), joined the same way.

    Returns
    -------
    str
    """
    attrs = attribute.split(INTERSECTION_SEP)
    groups = group.split(INTERSECTION_SEP)
    if len(attrs) != len(groups):
        return f"{attribute} {group}"
    return ", ".join(f"{a} {g}" for a, g in zip(attrs, groups))


def safe_name(name: Any) -> str:
    """Reduce a file reference to its base name so no user path reaches the report."""
    text = str(name) if name is not None else ""
    return PureWindowsPath(text.replace("/", "\\")).name or text


def slug(text: str, prefix: str = "t") -> str:
    """Return an HTML id fragment made of ``[a-z0-9-]`` only (stable for a given text)."""
    body = "".join(c if c.isalnum() and c.isascii() else "-" for c in text.lower()).strip("-")
    digest = sum((i + 1) * ord(c) for i, c in enumerate(text)) % 100000
    return f"{prefix}-{body[:40] or 'x'}-{digest}"
