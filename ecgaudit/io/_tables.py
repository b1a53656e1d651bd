"""Read prediction and metadata tables (CSV or Parquet)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ecgaudit._text import visible
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


#: Leading bytes of formats that are not text tables, with a name for messages.
_BINARY_MAGIC = {
    b"PK\x03\x04": "a zip archive (an .xlsx workbook?)",
    b"PAR1": "a Parquet file",
    b"\x89HDF": "an HDF5 file",
    b"\x93NUMPY": "a NumPy array",
    b"%PDF": "a PDF document",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office file",
    b"\x7fELF": "a program",
    b"\x80": "a Python pickle",
}
_GZIP = b"\x1f\x8b"


def _sniff_text(p: Path, name: str) -> None:
    """Refuse a binary file (zip, Parquet, ...) named like a CSV before pandas guesses."""
    with p.open("rb") as fh:
        head = fh.read(8192)
    if head.startswith(_GZIP):
        if name.lower().endswith(".gz"):
            return
        raise InputError(f"'{name}' is not a CSV file: it is gzip-compressed; name it "
                         f"'{name}.gz' or decompress it")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"'{name}' is not a CSV file ecgaudit can read: it is UTF-16 text, "
                         "not UTF-8; save it as UTF-8 CSV")
    for magic, what in _BINARY_MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"'{name}' is not a CSV file: it looks like {what}. Export the "
                             "table as CSV (or give a .parquet file its real name)")
    if b"\x00" in head:
        raise InputError(f"'{name}' is not a CSV file: it holds binary data (NUL bytes). "
                         "Export the table as CSV")


def _check_header(p: Path, name: str, sep: str) -> None:
    header = pd.read_csv(p, sep=sep, header=None, nrows=1, dtype=str,
                         keep_default_na=False).iloc[0].tolist()
    seen: dict[str, int] = {}
    for i, col in enumerate(header, start=1):
        if col in seen:
            raise InputError(
                f"'{name}', header: column '{visible(col)}' appears twice (columns "
                f"{seen[col]} and {i}); every column name must be unique - rename one"
            )
        seen[col] = i


def _read_csv(p: Path, name: str, text_columns: Sequence[str]) -> pd.DataFrame:
    lower = name.lower()
    sep = "\t" if lower.endswith((".tsv", ".tsv.gz")) else ","
    _sniff_text(p, name)
    _check_header(p, name, sep)
    # Values are what the file says: only empty cells are missing ("NA", "None", "null"
    # are text; declare them in `missing_values:` to mean unknown), and identifier columns
    # stay text ("00001" and "1" are different ids).
    dtype = {c: str for c in text_columns}
    return pd.read_csv(p, sep=sep, low_memory=False, keep_default_na=False, na_values=[""],
                       dtype=dtype or None)


def read_table(path: str | Path, text_columns: Sequence[str | None] = ()) -> InputTable:
    """Read a CSV/TSV (optionally gzipped) or Parquet file.

    Columns are read with their natural types, except ``text_columns`` (identifiers), which
    are read as text. In CSV files only empty cells are missing: ``NA``, ``N/A``, ``None``,
    ``null`` are values (an attribute's ``missing_values`` can declare them unknown).
    Labels and scores are interpreted later by validation, which names the file in every
    message.

    Parameters
    ----------
    path : str or Path
        The file.
    text_columns : sequence of str
        Columns to read as text (absent ones and ``None`` are ignored).

    Returns
    -------
    InputTable

    Raises
    ------
    InputError
        If the file is missing, empty, binary, of an unknown type, has a repeated column
        name, or cannot be parsed. The file's content is never echoed.
    """
    p = Path(path)
    name = p.name
    if not p.is_file():
        raise InputError(f"input file '{p}' does not exist (or is not a file)")
    lower = name.lower()
    wanted = [c for c in text_columns if c]
    try:
        if lower.endswith(_PARQUET_SUFFIXES):
            frame = pd.read_parquet(p)
            for c in wanted:
                if c in frame.columns and not pd.api.types.is_string_dtype(frame[c]):
                    frame[c] = frame[c].map(lambda v: v if pd.isna(v) else str(v))
        elif lower.endswith(_CSV_SUFFIXES):
            frame = _read_csv(p, name, wanted)
        else:
            raise InputError(
                f"'{name}': unknown file type; use .csv, .csv.gz, .tsv or .parquet"
            )
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"'{name}' is empty: expected a header row and data rows") from None
    except UnicodeDecodeError:
        raise InputError(f"'{name}' is not a CSV file: it is not UTF-8 text; save it as "
                         "UTF-8 CSV") from None
    except PermissionError:
        raise InputError(f"cannot read '{name}': permission denied") from None
    except (pd.errors.ParserError, ValueError, OSError, ImportError) as err:
        raise InputError(f"'{name}' could not be parsed as a table: {_reason(err)}") from None
    if frame.empty:
        raise InputError(f"'{name}' has a header but no data rows")
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    return InputTable(frame=frame, name=name, sha256=file_sha256(p))


def _reason(err: Exception) -> str:
    """Return a parse error's reason without any of the file's content (pandas quotes lines)."""
    if isinstance(err, pd.errors.ParserError):
        m = re.search(r"Expected \d+ fields in line \d+, saw \d+", str(err))
        return m.group(0) if m else "malformed rows (check quoting and separators)"
    return type(err).__name__
