"""CSV files of the committee views (``curves_by_value.csv``, ``controlled_disparities.csv``).

Part of the output set written by :meth:`ecgaudit.result.AuditResult.save` and the CLI when
the result's extras hold the rows (see ``docs/views.md``), through the project's one
injection-safe CSV writer (:func:`ecgaudit.io.frame_to_csv`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ecgaudit.io._csv import frame_to_csv

__all__ = ["VIEW_TABLES", "view_table_files"]

#: ``extras`` key -> CSV file name.
VIEW_TABLES = {"curves_by_value": "curves_by_value.csv",
               "controlled_disparities": "controlled_disparities.csv"}


def view_table_files(extras: Mapping[str, Any]) -> dict[str, bytes]:
    """Return the view tables present in ``extras`` as CSV bytes, by file name.

    Parameters
    ----------
    extras : mapping
        ``AuditResult.extras``.

    Returns
    -------
    dict of str to bytes
        ``{file name: CSV}`` for every non-empty view table.
    """
    out = {}
    for key, name in VIEW_TABLES.items():
        rows = extras.get(key)
        if rows:
            columns = list(dict.fromkeys(k for r in rows for k in r))
            out[name] = frame_to_csv(pd.DataFrame.from_records(list(rows),
                                                               columns=columns)).encode()
    return out
