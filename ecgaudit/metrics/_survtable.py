"""The survival metrics as the survival engine reads them, derived from the metric registry.

Each entry says what the metric is, which way is better, what it needs (a risk ordering
only, or a probability of the event by the horizon), whether it depends on a horizon, how
its interval is computed, and which independent implementation the tests compare it with.
The declarations live in :mod:`ecgaudit.registry` (``_survival.py``); this view keeps the
engine's field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ecgaudit.registry import REGISTRY

__all__ = ["SURVIVAL_METRICS", "SURVIVAL_METRIC_NAMES", "SurvivalMetric", "survival_metric"]


@dataclass(frozen=True)
class SurvivalMetric:
    """Declaration of one survival metric.

    Attributes
    ----------
    name, label, definition : str
        Identifier (``metrics.csv``), human label, one-sentence definition.
    higher_is_better : bool or None
        Direction (``None``: neither, e.g. O/E whose target is 1).
    needs : {"risk", "probability"}
        ``risk``: any score where higher means higher risk; ``probability``: the predicted
        probability of the event by the horizon.
    horizon : {"none", "each", "largest"}
        Whether the metric is reported at every horizon, once at the largest, or has none.
    interval : str
        ``ci_method`` of the interval without bootstrap, and with it.
    reference : str
        The independent implementation (or closed form) the tests check it against.
    bounded : bool
        The value lies in [0, 1].
    """

    name: str
    label: str
    definition: str
    higher_is_better: bool | None
    needs: Literal["risk", "probability"]
    horizon: Literal["none", "each", "largest"]
    interval: str
    reference: str
    bounded: bool = True


SURVIVAL_METRICS: tuple[SurvivalMetric, ...] = tuple(
    SurvivalMetric(s.name, s.label, s.definition, s.higher_is_better, s.extra["score"],
                   s.extra["horizon"], s.extra["interval"], s.reference_name, s.bounded)
    for s in REGISTRY.select("survival"))

SURVIVAL_METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in SURVIVAL_METRICS)

_BY_NAME = {m.name: m for m in SURVIVAL_METRICS}


def survival_metric(name: str) -> SurvivalMetric:
    """Return the declaration of survival metric ``name``."""
    return _BY_NAME[name]
