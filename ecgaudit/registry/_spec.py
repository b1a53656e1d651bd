"""The declaration of one metric and the registry that holds every declaration.

A :class:`MetricSpec` says *what* a metric is (name, labels, definition, outcome type,
direction, what it needs, which interval methods and disparity test it gets, and an
independent reference implementation); the engines in :mod:`ecgaudit.metrics` say *how*
it is computed. Tables that used to repeat these properties (schema metric lists, policy
directions, report labels, bootstrap "needs" phrases, docs) are lookups in the registry.

The registry holds plain data only (no numerical code, no third-party imports) so that
every stage, down to :mod:`ecgaudit.schema`, may read it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DIRECTIONS", "OUTCOMES", "Direction", "MetricRegistry", "MetricSpec", "Outcome"]

Outcome = Literal["binary", "continuous", "survival"]
Direction = Literal["higher", "lower", "target", "none"]

#: Outcome types, in registry order.
OUTCOMES: tuple[Outcome, ...] = ("binary", "continuous", "survival")
#: Directions: larger is better, smaller is better, closer to ``target`` is better, neither.
DIRECTIONS: tuple[Direction, ...] = ("higher", "lower", "target", "none")


@dataclass(frozen=True)
class MetricSpec:
    """Declaration of one metric of one outcome type.

    Attributes
    ----------
    name : str
        Identifier in ``metrics.csv`` (unique within an outcome type; ``brier`` exists for
        binary and survival outcomes with different definitions).
    outcome : {"binary", "continuous", "survival"}
        The outcome type whose audit reports the metric.
    label : str
        Display name in the report's tables.
    short_label : str
        Compact name for figure axes.
    definition : str
        One-line plain-language definition (report Methods section, docs).
    direction : {"higher", "lower", "target", "none"}
        Which values are better.
    target : float, optional
        The ideal value when ``direction == "target"`` (O/E 1, calibration slope 1).
    needs : tuple of str
        What a group must contain for the metric to be defined: ``rows``, ``positives``,
        ``negatives``, ``flagged``, ``unflagged``, ``expected_events``, ``distinct_scores``,
        ``threshold``, ``horizon``, ``probability``, ``tolerance``, ``group``, ``reference``.
    needs_text : str
        The same in words (used verbatim in degenerate-replicate reasons).
    intervals : tuple of str
        ``ci_method`` names the metric can carry (closed form first, then bootstrap).
    disparity_test : str
        The ``test`` of its closed-form disparity rows (``"bootstrap"``: only with B > 0;
        ``"none"``: difference reported without a test).
    family : str
        Engine family: binary ``rank``, ``calibration``, ``rate``, ``ranking``; continuous
        ``agreement``; survival ``concordance``, ``horizon``.
    reference : callable, optional
        Independent implementation (scikit-learn, statsmodels, scipy, scikit-survival or a
        closed form) used by the tests; its signature depends on the outcome type (see
        :mod:`ecgaudit.registry._references`). ``None`` where no independent one exists.
    reference_name : str
        What ``reference`` calls, in words (docs).
    bounded : bool
        The value lies in [0, 1].
    rule : bool
        A policy rule may name it.
    table : {"metrics", "ranking"}
        The result table that holds its rows (``ranking``: per-group ranking metrics).
    extra : dict
        Outcome-specific properties (survival ``horizon``: ``none``/``each``/``largest``;
        continuous ``min_n``, ``contrast``).
    """

    name: str
    outcome: Outcome
    label: str
    short_label: str
    definition: str
    direction: Direction
    needs: tuple[str, ...]
    needs_text: str
    intervals: tuple[str, ...]
    disparity_test: str
    family: str
    reference: Callable[..., float] | None = None
    reference_name: str = ""
    target: float | None = None
    bounded: bool = False
    rule: bool = True
    table: Literal["metrics", "ranking"] = "metrics"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Reject an inconsistent declaration (caught when the registry is imported)."""
        if self.outcome not in OUTCOMES:
            raise ValueError(f"metric {self.name!r}: outcome must be one of {OUTCOMES}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction must be one of {DIRECTIONS}")
        if (self.direction == "target") != (self.target is not None):
            raise ValueError(f"metric {self.name!r}: a target value goes with direction "
                             "'target' only")

    @property
    def key(self) -> tuple[str, str]:
        """``(outcome, name)``: unique in a registry."""
        return (self.outcome, self.name)

    @property
    def higher_is_better(self) -> bool | None:
        """True / False for a monotone direction, ``None`` for a target or no direction."""
        return {"higher": True, "lower": False}.get(self.direction)


class MetricRegistry:
    """An ordered collection of :class:`MetricSpec`, unique by ``(outcome, name)``.

    Order is report order within an outcome type (``metrics.csv`` rows follow it).

    Parameters
    ----------
    specs : iterable of MetricSpec
        Declarations, in report order.
    """

    def __init__(self, specs: Iterable[MetricSpec] = ()) -> None:
        self._specs: dict[tuple[str, str], MetricSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: MetricSpec) -> MetricSpec:
        """Add ``spec``; a second declaration of the same outcome and name is an error.

        Parameters
        ----------
        spec : MetricSpec
            The declaration.

        Returns
        -------
        MetricSpec
            ``spec`` (so it can be used as an expression).
        """
        if spec.key in self._specs:
            raise ValueError(f"metric {spec.name!r} ({spec.outcome}) is already registered")
        self._specs[spec.key] = spec
        return spec

    def __iter__(self) -> Iterator[MetricSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def get(self, name: str, outcome: Outcome = "binary") -> MetricSpec:
        """Return the declaration of ``name`` for ``outcome``.

        Raises
        ------
        KeyError
            With the registered names of that outcome type.
        """
        try:
            return self._specs[(outcome, name)]
        except KeyError:
            known = ", ".join(self.names(outcome, table=None))
            raise KeyError(f"no {outcome} metric {name!r} is registered (known: {known})"
                           ) from None

    def select(self, outcome: Outcome | None = None, *, table: str | None = "metrics",
               **props: Any) -> tuple[MetricSpec, ...]:
        """Return the declarations of one outcome type (all when ``None``) matching ``props``.

        Parameters
        ----------
        outcome : str, optional
            Outcome type.
        table : str or None
            Result table (``None``: any).
        **props
            Attribute values to match (``direction="higher"``, ``family="rate"``).

        Returns
        -------
        tuple of MetricSpec
            In registry order.
        """
        return tuple(s for s in self._specs.values()
                     if (outcome is None or s.outcome == outcome)
                     and (table is None or s.table == table)
                     and all(getattr(s, k) == v for k, v in props.items()))

    def names(self, outcome: Outcome | None = None, *, table: str | None = "metrics",
              **props: Any) -> tuple[str, ...]:
        """Return the names of :meth:`select` (each once, in registry order)."""
        return tuple(dict.fromkeys(s.name for s in self.select(outcome, table=table,
                                                               **props)))
