r"""The one CSV writer: every CSV ecgaudit writes goes through :func:`frame_to_csv`.

Text cells (and column names) that a spreadsheet would evaluate as a formula - starting
with ``=``, ``+``, ``-``, ``@``, tab or carriage return - get a leading apostrophe (the
OWASP CSV-injection rule); control characters (ESC, a bare carriage return that would split
a row) are written as visible ``\x1b`` escapes. Numeric columns are untouched, so ``-0.25``
stays a number. JSON outputs keep the raw values.
"""

from __future__ import annotations

import pandas as pd

from ecgaudit._text import csv_cell, visible

__all__ = ["frame_to_csv", "neutralise_frame"]


def _cell(value: object) -> object:
    """Neutralise a formula, and show control characters (a bare CR would split the row)."""
    value = csv_cell(value)
    return visible(value) if isinstance(value, str) else value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy whose text cells and column names cannot run as spreadsheet formulas.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any table.

    Returns
    -------
    pandas.DataFrame
        Same shape and order; only text values starting with a formula character change.
    """
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or isinstance(s.dtype, (pd.StringDtype, pd.CategoricalDtype)):
            out[col] = s.astype(object).map(_cell)
    out.columns = [_cell(str(c)) for c in out.columns]
    return out


def frame_to_csv(frame: pd.DataFrame, *, sep: str = ",") -> str:
    r"""Serialise a table as injection-safe CSV (no index, ``\\n`` line ends).

    Parameters
    ----------
    frame : pandas.DataFrame
        The table.
    sep : str
        Field separator.

    Returns
    -------
    str
        The CSV text.
    """
    return neutralise_frame(frame).to_csv(index=False, lineterminator="\n", sep=sep)
