"""Read prediction and metadata tables (CSV or Parquet)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ecgaudit.errors import InputError

_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class InputTable:
    """A table read from a file, with its provenance.

    Attributes
    ----------
    frame : pandas.DataFrame
        The data, with a fresh RangeIndex (row ``i`` is data row ``i + 1`` of the file).
    name : str
        The file's base name (never a full path: it ends up in reports).
    sha256 : str
        Hex digest of the file's bytes.
    """

    frame: pd.DataFrame
    name: str
    sha256: str


def file_sha256(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a file.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        64 hex characters.
    """
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_table(path: str | Path) -> InputTable:
    """Read a CSV/TSV (optionally gzipped) or Parquet file.

    Columns are read with their natural types; identifier-like and label columns are
    interpreted later by validation, which names the file in every message.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    InputTable

    Raises
    ------
    InputError
        If the file is missing, empty, of an unknown type or cannot be parsed.
    """
    p = Path(path)
    name = p.name
    if not p.is_file():
        raise InputError(f"input file '{p}' does not exist (or is not a file)")
    lower = name.lower()
    try:
        if lower.endswith(_PARQUET_SUFFIXES):
            frame = pd.read_parquet(p)
        elif lower.endswith(_CSV_SUFFIXES):
            sep = "\t" if lower.endswith((".tsv", ".tsv.gz")) else ","
            frame = pd.read_csv(p, sep=sep, low_memory=False)
        else:
            raise InputError(
                f"'{name}': unknown file type; use .csv, .csv.gz, .tsv or .parquet"
            )
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"'{name}' is empty: expected a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"'{name}' could not be parsed as a table: {first}") from None
    if frame.empty:
        raise InputError(f"'{name}' has a header but no data rows")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return InputTable(frame=frame, name=name, sha256=file_sha256(p))
