"""Layout of an audit summary, schema ``ecgaudit-summary`` version 1.

A summary is one table of *cells* plus a JSON *header*.

Cells (one row per non-empty cell; sorted by ``task``, the attribute columns, ``bin``,
``label``):

==================  =========  ===============================================================
column              dtype      meaning
==================  =========  ===============================================================
``task``            string     task name (``tasks[i].name`` of the header)
``a:<attribute>``   string     the row's group of that attribute, after banding and recoding
                               (``Unknown`` for a missing value); one column per attribute,
                               in header order. Together: the *finest stratum*.
``bin``             int32      score bin, ``0 .. len(edges) - 2`` (see below)
``label``           int8       0 or 1
``n``               int64      number of ECGs in the cell
``sum_p``           float64    sum of their scores (probabilities)
``r:<k>``           int32      only with replicates: ``sum`` of the Poisson(1) bootstrap weights
                               of replicate ``k`` (``0 .. B-1``) over the cell's ECGs
==================  =========  ===============================================================

Score bins are a *shared grid*, never derived from the data, so every site bins alike:
``edges = [0, expit(-L + 2L k / (bins - 2)) for k = 0..bins-2, 1]`` with ``L = 12`` (equal
width on the logit scale, tails included), plus the task's frozen threshold inserted as an
edge when it is not one already. A score ``p`` falls in bin ``k`` when
``edges[k] <= p < edges[k + 1]``; ``p = 1`` falls in the last bin. So ``p >= threshold``
exactly when the bin starts at or above the threshold: threshold counts are exact. Another
engine bins by the same numbers: compute them with :func:`grid_edges` and count
``edges[1:-1] <= p`` (``bin_index``). The header stores, per task, the SHA-256 of the edges
(little-endian float64 bytes), so a reader whose edges differ refuses the file instead of
mixing grids.

Header (JSON; key ``ecgaudit.summary`` of the Parquet file's metadata):

``schema`` (``"ecgaudit-summary"``), ``version`` (1), ``ecgaudit_version``, ``site``
(a name), ``tasks`` (``[{name, threshold, bins, edges_sha256}]``), ``attributes``
(``[{name, kind, bands}]``; ``bands`` only for ``kind: age``), ``grid`` (``{kind: "logit",
bins, limit}``), ``n_ecgs`` (ECGs kept), ``small_cell`` (``{min_stratum, dropped_strata}``:
finest strata with fewer ECGs than ``min_stratum`` are left out whole; ``dropped_strata``
counts them), ``replicates`` (``null`` or ``{B, seed, scheme: "poisson-hash-1", unit}``),
``content_sha256`` (SHA-256 of the header without this key plus every column; see
:func:`ecgaudit.summary._file.content_digest`). A file whose digest does not match, or of
another schema or version, is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

__all__ = [
    "CELL_COLUMNS", "DEFAULT_BINS", "LOGIT_LIMIT", "MAX_BINS", "MIN_BINS", "SCHEMA",
    "SCHEMA_VERSION", "Summary", "attribute_column", "bin_index", "edges_digest", "grid_edges",
    "replicate_column",
]

SCHEMA = "ecgaudit-summary"
SCHEMA_VERSION = 1
#: Bins of the default grid (before the threshold edge is inserted).
DEFAULT_BINS = 1024
MIN_BINS = 8
MAX_BINS = 65536
#: The grid's interior edges span ``[-LOGIT_LIMIT, LOGIT_LIMIT]`` on the logit scale.
LOGIT_LIMIT = 12.0
#: Columns of every cell table (then one ``a:<attribute>`` per attribute after ``task``,
#: then the optional replicate columns).
CELL_COLUMNS = ("task", "bin", "label", "n", "sum_p")


def attribute_column(name: str) -> str:
    """Column of the cell table that holds attribute ``name``'s group."""
    return f"a:{name}"


def replicate_column(k: int) -> str:
    """Column of the cell table that holds replicate ``k``'s weighted count."""
    return f"r:{k}"


def grid_edges(bins: int, threshold: float) -> np.ndarray:
    """Edges of the shared score grid of one task (see the module docstring).

    Parameters
    ----------
    bins : int
        Bins of the grid, ``MIN_BINS .. MAX_BINS``.
    threshold : float
        The task's frozen threshold, inserted as an edge.

    Returns
    -------
    ndarray of float64
        Strictly increasing edges from 0 to 1.
    """
    inner = expit(np.linspace(-LOGIT_LIMIT, LOGIT_LIMIT, int(bins) - 1))
    edges = np.unique(np.concatenate([[0.0], inner, [1.0]]))
    if 0.0 < threshold < 1.0 and threshold not in edges:
        edges = np.unique(np.concatenate([edges, [float(threshold)]]))
    return edges


def edges_digest(edges: np.ndarray) -> str:
    """SHA-256 of a grid's edges (little-endian float64 bytes), stored per task."""
    return hashlib.sha256(np.ascontiguousarray(edges, dtype="<f8").tobytes()).hexdigest()


def bin_index(p: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of every score: ``k`` with ``edges[k] <= p < edges[k + 1]`` (``p = 1``: last)."""
    k = np.searchsorted(np.asarray(edges)[1:-1], np.asarray(p, dtype=np.float64),
                        side="right")
    return k.astype(np.int32)


@dataclass
class Summary:
    """A summary: its header and its cell table (see the module docstring).

    Attributes
    ----------
    header : dict
        The header, ``content_sha256`` included once written or read.
    cells : pandas.DataFrame
        The cell table.
    source : str
        Where it came from (a file's base name), for messages.
    """

    header: dict[str, Any]
    cells: pd.DataFrame
    source: str = field(default="<summary>")

    @property
    def attributes(self) -> list[str]:
        """Attribute names, in header order."""
        return [a["name"] for a in self.header["attributes"]]

    @property
    def tasks(self) -> list[str]:
        """Task names, in header order."""
        return [t["name"] for t in self.header["tasks"]]

    def edges(self) -> dict[str, np.ndarray]:
        """Per task, the edges of its score grid."""
        return {t["name"]: grid_edges(int(self.header["grid"]["bins"]), float(t["threshold"]))
                for t in self.header["tasks"]}

    @property
    def n_replicates(self) -> int:
        """Bootstrap replicates carried (0 without)."""
        rep = self.header.get("replicates")
        return int(rep["B"]) if rep else 0
