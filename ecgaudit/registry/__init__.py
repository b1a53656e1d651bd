"""The metric registry: one declaration per metric of every outcome type.

Every metric the audit reports is declared once here (:class:`MetricSpec`); the schema's
metric lists, the policy's metric names and directions, the report's labels and
definitions, the bootstrap's "needs" phrases and ``docs/metrics.md`` are derived from it.
The engines that compute the metrics live in :mod:`ecgaudit.metrics` (see
``docs/architecture.md``).

This package sits below every stage (it imports nothing from ecgaudit), so that
:mod:`ecgaudit.schema`, :mod:`ecgaudit.policy` and :mod:`ecgaudit.reports` can read it.

Examples
--------
>>> from ecgaudit.registry import get_metric, metric_names
>>> get_metric("auroc").direction
'higher'
>>> metric_names("continuous")[:3]
('bias', 'mae', 'rmse')
"""

from __future__ import annotations

from typing import Any

from ecgaudit.registry._binary import BINARY_SPECS
from ecgaudit.registry._continuous import CONTINUOUS_SPECS
from ecgaudit.registry._spec import (
    DIRECTIONS,
    OUTCOMES,
    Direction,
    MetricRegistry,
    MetricSpec,
    Outcome,
)
from ecgaudit.registry._survival import SURVIVAL_SPECS

__all__ = [
    "DIRECTIONS",
    "OUTCOMES",
    "REGISTRY",
    "Direction",
    "MetricRegistry",
    "MetricSpec",
    "Outcome",
    "directional",
    "get_metric",
    "labels",
    "metric_names",
    "registry",
]

#: The registry of every metric the audit reports.
REGISTRY = MetricRegistry((*BINARY_SPECS, *CONTINUOUS_SPECS, *SURVIVAL_SPECS))


def registry() -> MetricRegistry:
    """Return the registry of every metric (iterate it, or :meth:`~MetricRegistry.get`)."""
    return REGISTRY


def get_metric(name: str, outcome: Outcome = "binary") -> MetricSpec:
    """Return the declaration of metric ``name`` of outcome type ``outcome``.

    Parameters
    ----------
    name : str
        Identifier as in ``metrics.csv``.
    outcome : {"binary", "continuous", "survival"}
        Outcome type (names such as ``brier`` exist for several).

    Returns
    -------
    MetricSpec

    Raises
    ------
    KeyError
        When no such metric is registered (the message lists the known names).
    """
    return REGISTRY.get(name, outcome)


def metric_names(outcome: Outcome | None = None, *, table: str | None = "metrics",
                 **props: Any) -> tuple[str, ...]:
    """Return the names of the registered metrics matching the filters, in report order.

    Parameters
    ----------
    outcome : str, optional
        Outcome type (``None``: all, each name once).
    table : str or None
        ``"metrics"`` (default), ``"ranking"`` or ``None`` for both.
    **props
        Attribute values to match, e.g. ``family="rate"``, ``direction="lower"``.

    Returns
    -------
    tuple of str
    """
    return REGISTRY.names(outcome, table=table, **props)


def directional(direction: Direction, outcomes: tuple[Outcome, ...] = OUTCOMES, *,
                table: str | None = "metrics") -> frozenset[str]:
    """Return the names of the metrics of ``outcomes`` with ``direction`` (``"higher"``, ...)."""
    return frozenset(s.name for s in REGISTRY.select(None, table=table, direction=direction)
                     if s.outcome in outcomes)


def labels(outcome: Outcome = "binary", *, short: bool = False,
           table: str | None = "metrics") -> dict[str, str]:
    """``name -> label`` (or ``short_label``) of one outcome type's metrics."""
    return {s.name: s.short_label if short else s.label
            for s in REGISTRY.select(outcome, table=table)}
