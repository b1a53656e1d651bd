"""Horizons in the gate: survival rows are judged, named and selected per horizon.

Survival metrics reported at a horizon (``td_auroc``, ``brier``, ``oe_ratio``, ...; the
registry's ``horizon: each``, or ``largest`` for ``uno_c`` / ``ibs``) have one row per
horizon. Every rule outcome on such a row names its horizon (``td_auroc@365``), and a rule
may select horizons with ``horizon: 365`` or ``horizon: [365, 1825]`` (see
``docs/gating.md``). Binary and other rows have no horizon and are named as before.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ecgaudit.registry import REGISTRY

__all__ = [
    "HORIZON_METRICS",
    "horizon_mask",
    "horizon_problems",
    "horizon_suffix",
    "horizon_text",
    "labelled",
    "row_horizon",
]

#: Metrics a rule may select horizons of (reported at one or more horizons).
HORIZON_METRICS: frozenset[str] = frozenset(
    s.name for s in REGISTRY.select("survival") if s.extra.get("horizon", "none") != "none")

MSG_NO_HORIZON = (
    "'horizon' selects the horizons of a survival metric reported at a horizon ({valid}); "
    "{what} has none: remove 'horizon' from this rule"
)


def row_horizon(row: Mapping[str, Any]) -> float | None:
    """Return a row's horizon, ``None`` when it has none (binary rows, ``harrell_c``)."""
    value = row.get("horizon")
    if value is None or value is pd.NA:
        return None
    try:
        h = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(h) else h


def horizon_text(horizon: float) -> str:
    """Format a horizon as the report does: ``365``, ``182.5`` (in the time column's unit)."""
    return f"{horizon:g}"


def labelled(metric: str | None, horizon: float | None) -> str:
    """Return ``metric@horizon`` (e.g. ``td_auroc@365``), or the metric without a horizon."""
    name = str(metric)
    return name if horizon is None else f"{name}@{horizon_text(horizon)}"


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def horizon_mask(column: pd.Series, horizons: Iterable[float]) -> pd.Series:
    """Return which rows lie at one of ``horizons`` (rows without a horizon never do)."""
    wanted = list(horizons)
    values = pd.to_numeric(column, errors="coerce")
    return values.map(lambda v: not math.isnan(v) and any(_same(v, h) for h in wanted)
                      ).astype(bool)


def horizon_problems(metric: str | None, horizons: Iterable[float],
                     frame: pd.DataFrame | None) -> list[str]:
    """Check a rule's ``horizon`` selection (one message per problem; empty when valid).

    Parameters
    ----------
    metric : str or None
        The rule's metric.
    horizons : iterable of float
        The selected horizons.
    frame : pandas.DataFrame, optional
        The rows the rule is judged on, already restricted to its metric and tasks; when
        given, every selected horizon must be one of theirs.

    Returns
    -------
    list of str
        E.g. ``horizon: unknown horizon '1000' of td_auroc. Valid: 365, 1095``.
    """
    valid = ", ".join(sorted(HORIZON_METRICS))
    if metric is None or metric not in HORIZON_METRICS:
        what = "a rule without a metric" if metric is None else f"metric '{metric}'"
        return [MSG_NO_HORIZON.format(valid=valid, what=what)]
    if frame is None:
        return []
    present = sorted({float(v) for v in pd.to_numeric(frame["horizon"], errors="coerce")
                      if not math.isnan(v)}) if "horizon" in frame.columns else []
    shown = ", ".join(horizon_text(h) for h in present) or "none in this result"
    return [f"horizon: unknown horizon '{horizon_text(h)}' of {metric} in the tasks of this "
            f"rule. Valid: {shown}" for h in horizons if not any(_same(h, p) for p in present)]


def horizon_suffix(horizons: Iterable[float] | None) -> str:
    """Return the generated description's ending for a rule selecting horizons (or ``""``)."""
    hs = list(horizons or ())
    if not hs:
        return ""
    return f" at horizon{'s' if len(hs) > 1 else ''} {', '.join(horizon_text(h) for h in hs)}"
