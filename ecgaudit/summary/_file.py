r"""Write and read summary files: Parquet cells, JSON header, content digest.

The digest (``content_sha256``) is the SHA-256 of the header without that key (JSON,
sorted keys, compact) followed, column by column in table order, by the column name and
its values (text: UTF-8 joined by ``\x1f``; numbers: little-endian bytes of the stored
dtype). Reading recomputes it: a file edited after it was written, or cut short, is
refused, as is one of another schema or version.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.errors import InputError
from ecgaudit.summary._layout import (
    CELL_COLUMNS,
    SCHEMA,
    SCHEMA_VERSION,
    Summary,
    attribute_column,
    edges_digest,
    replicate_column,
)

__all__ = ["HEADER_KEY", "content_digest", "expected_columns", "read_summary", "write_summary"]

#: Key of the header in the Parquet file's key-value metadata.
HEADER_KEY = b"ecgaudit.summary"

_DTYPES = {"bin": np.int32, "label": np.int8, "n": np.int64, "sum_p": np.float64}


def expected_columns(header: dict[str, Any]) -> list[str]:
    """Columns of the cell table the header describes, in order."""
    attrs = [attribute_column(a["name"]) for a in header["attributes"]]
    reps = header.get("replicates")
    extra = [replicate_column(k) for k in range(int(reps["B"]))] if reps else []
    return ["task", *attrs, *CELL_COLUMNS[1:], *extra]


def content_digest(header: dict[str, Any], cells: pd.DataFrame) -> str:
    """SHA-256 of a summary's content (see the module docstring)."""
    h = hashlib.sha256()
    body = {k: v for k, v in header.items() if k != "content_sha256"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for c in cells.columns:
        h.update(b"\x00" + str(c).encode() + b"\x00")
        col = cells[c]
        if c == "task" or str(c).startswith("a:"):
            h.update("\x1f".join(col.astype(str)).encode())
        else:
            dtype = np.dtype(_DTYPES.get(c, np.int32)).newbyteorder("<")
            h.update(np.ascontiguousarray(col.to_numpy(), dtype=dtype).tobytes())
    return h.hexdigest()


def write_summary(summary: Summary, path: str | Path) -> Path:
    """Write a summary as Parquet with its header and digest; return the path.

    The file is written next to its destination and moved into place, so a reader never
    sees half a file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ecgaudit.io import atomic_write_bytes

    header = {k: v for k, v in summary.header.items() if k != "content_sha256"}
    cells = summary.cells.loc[:, expected_columns(header)].reset_index(drop=True)
    header["content_sha256"] = content_digest(header, cells)
    table = pa.Table.from_pandas(cells, preserve_index=False)
    table = table.replace_schema_metadata({HEADER_KEY: json.dumps(header).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    summary.header = header
    return atomic_write_bytes(path, buf.getvalue())


def _refuse(name: str, key: str, problem: str, hint: str) -> InputError:
    return InputError(f"summary file {name}: {key}: {problem} Hint: {hint}")


def _check_header(name: str, header: Any) -> dict[str, Any]:
    if not isinstance(header, dict) or header.get("schema") != SCHEMA:
        raise _refuse(name, "schema", f"this is not an {SCHEMA} file.",
                      "pass files written by `ecgaudit summarize`.")
    version = header.get("version")
    if version != SCHEMA_VERSION:
        raise _refuse(name, "version",
                      f"schema version {version!r} is not the supported version "
                      f"{SCHEMA_VERSION} (written by ecgaudit "
                      f"{header.get('ecgaudit_version', 'unknown')}).",
                      "re-run `ecgaudit summarize` at the site with this ecgaudit version.")
    for key in ("site", "tasks", "attributes", "grid", "n_ecgs", "small_cell",
                "content_sha256"):
        if key not in header:
            raise _refuse(name, key, "the key is missing from the header.",
                          "re-run `ecgaudit summarize`; do not edit summary files.")
    return header


def read_summary(path: str | Path) -> Summary:
    """Read and verify a summary file.

    Raises
    ------
    InputError
        If the file is missing, not a summary, of another schema version, or its content
        does not match its digest (the message names the file and the key).
    """
    import pyarrow.parquet as pq

    p = Path(path)
    name = p.name
    if not p.is_file():
        raise InputError(f"summary file {name}: not found ({p}).")
    try:
        table = pq.read_table(p)
    except Exception as exc:  # any unreadable file is bad input
        raise _refuse(name, "file", f"cannot be read as Parquet ({type(exc).__name__}).",
                      "pass files written by `ecgaudit summarize`.") from None
    meta = table.schema.metadata or {}
    try:
        header = json.loads(meta[HEADER_KEY])
    except (KeyError, ValueError):
        raise _refuse(name, "header", "the ecgaudit summary header is missing or unreadable.",
                      "pass files written by `ecgaudit summarize`.") from None
    header = _check_header(name, header)
    cells = table.to_pandas()
    try:
        expected = expected_columns(header)
    except (KeyError, TypeError):
        raise _refuse(name, "attributes", "the header is malformed.",
                      "re-run `ecgaudit summarize`; do not edit summary files.") from None
    if list(cells.columns) != expected:
        raise _refuse(name, "columns", f"columns {list(cells.columns)} differ from the "
                      f"layout {expected}.", "re-run `ecgaudit summarize`.")
    try:
        edges = Summary(header=header, cells=cells).edges()
    except (KeyError, TypeError, ValueError):
        raise _refuse(name, "tasks", "the header is malformed.",
                      "re-run `ecgaudit summarize`; do not edit summary files.") from None
    for t in header["tasks"]:
        if t.get("edges_sha256") != edges_digest(edges[t["name"]]):
            raise _refuse(name, "tasks.edges_sha256", f"the score grid of task '{t['name']}' "
                          "computed here differs from the one the file was binned on.",
                          "summarise and audit with the same ecgaudit version.")
    if content_digest(header, cells) != header["content_sha256"]:
        raise _refuse(name, "content_sha256", "the content does not match its digest: the "
                      "file was edited or damaged after it was written.",
                      "ask the site for the file as `ecgaudit summarize` wrote it.")
    return Summary(header=header, cells=cells, source=name)
