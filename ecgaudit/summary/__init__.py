"""Portable sufficient statistics of a binary audit: the summary file (schema in ``_layout``).

A *summary* holds, per task, finest stratum (one group of every attribute), score bin and
label, the number of ECGs and the sum of their scores; optionally the same counts under
Poisson(1) bootstrap weights hashed from the patient id. It holds no rows and no
identifiers. ``docs/scale.md`` documents every column and what a summary reveals.
"""

from ecgaudit.summary._build import cell_table, poisson_weights
from ecgaudit.summary._file import content_digest as content_digest_of
from ecgaudit.summary._file import read_summary, write_summary
from ecgaudit.summary._layout import (
    CELL_COLUMNS,
    DEFAULT_BINS,
    SCHEMA,
    SCHEMA_VERSION,
    Summary,
    attribute_column,
    bin_index,
    edges_digest,
    grid_edges,
    replicate_column,
)

__all__ = [
    "CELL_COLUMNS",
    "DEFAULT_BINS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Summary",
    "attribute_column",
    "bin_index",
    "cell_table",
    "content_digest_of",
    "edges_digest",
    "grid_edges",
    "poisson_weights",
    "read_summary",
    "replicate_column",
    "write_summary",
]
