"""The ecgaudit exception tree, documented in one place.

Every error the library raises on purpose derives from :class:`EcgAuditError`.
The CLI maps them to exit codes:

==============================  ==========================================  =========
exception                       raised when                                 CLI exit
==============================  ==========================================  =========
``InputError``                  user input is unusable (base of the below)  2
``ConfigError``                 a config / policy file is invalid           2
``ValidationError``             data rows fail checks (all listed at once)  2
``JoinError``                   predictions and metadata do not match       2
``ModelLoadError``              a model file is unsafe or does not fit      2
``ComputationError``            a computation could not be completed        1
==============================  ==========================================  =========

The library never prints or exits; it raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "ComputationError",
    "ConfigError",
    "EcgAuditError",
    "InputError",
    "JoinError",
    "ModelLoadError",
    "Problem",
    "ValidationError",
]

#: How many row numbers a problem lists before summarising the rest.
MAX_ROWS_SHOWN = 5


class EcgAuditError(Exception):
    """Base class of every error ecgaudit raises on purpose."""


class InputError(EcgAuditError):
    """The user's input (files, options, config) cannot be used as given."""


class ConfigError(InputError):
    """A configuration or policy file is invalid."""


class JoinError(InputError):
    """Predictions and metadata could not be joined one-to-one."""


class ModelLoadError(InputError):
    """A model file is unsafe to load, or does not match its declared architecture."""


class ComputationError(EcgAuditError):
    """A computation failed for a reason that is not the user's input."""


def format_rows(rows: Sequence[int]) -> str:
    """Format row numbers as ``"3, 17, 20 (+12 more)"``.

    Parameters
    ----------
    rows : sequence of int
        Row numbers as a user sees them in the file (1-based, header excluded).

    Returns
    -------
    str
        A short human-readable list.
    """
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_SHOWN])
    extra = len(rows) - MAX_ROWS_SHOWN
    return f"{shown} (+{extra} more)" if extra > 0 else shown


@dataclass(frozen=True)
class Problem:
    """One problem found in an input.

    Parameters
    ----------
    message : str
        What is wrong, in one sentence.
    source : str, optional
        The file (base name) or object the problem is in.
    column : str, optional
        The column concerned.
    rows : tuple of int
        Data row numbers (1-based, the header row not counted).
    hint : str, optional
        How to fix it.
    """

    message: str
    source: str | None = None
    column: str | None = None
    rows: tuple[int, ...] = field(default_factory=tuple)
    hint: str | None = None

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(self.source)
        if self.column is not None:
            where.append(f"column '{self.column}'")
        if self.rows:
            label = "row" if len(self.rows) == 1 else "rows"
            where.append(f"{label} {format_rows(self.rows)}")
        prefix = f"{', '.join(where)}: " if where else ""
        text = f"{prefix}{self.message}"
        if self.hint:
            text += f" Hint: {self.hint}"
        return text


class ValidationError(InputError):
    """One or more problems were found in the input data; all are listed.

    Parameters
    ----------
    problems : sequence of Problem
        Every problem found, in the order found.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found in the input:"
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}\n{body}")
