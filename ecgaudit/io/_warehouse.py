"""Tables that stay where they live: DuckDB, PostgreSQL or Spark, through Ibis.

A :class:`Source` is an Ibis table expression plus a description safe to print (a
connection URL without its password, or a dataset's base name). :func:`open_source` opens
one from a dataset path (Parquet or CSV files, globs allowed; read by an embedded DuckDB
with a memory limit, streaming) or from ``--sql QUERY --connection URL``:

* ``duckdb://`` (in memory) or ``duckdb:///path/to/file.duckdb``
* ``postgresql://user:password@host:port/database`` (also ``postgres://``)
* ``spark:local[2]`` (a local Spark session; ``spark:<master URL>`` for a cluster)

:func:`cell_counts` is the one portable expression that does the work in the engine:
per (raw attribute values, raw label, score bin) the number of rows and the sum of their
scores. The score bin is computed on the logit grid of :mod:`ecgaudit.summary._layout`
without floating-point disagreements between engines: an approximate bin from the logit
formula, then corrected by exact comparisons against the grid's stored edges (a join with a
small edge table), so every engine puts every score in the bin NumPy puts it in.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.errors import InputError

__all__ = [
    "Grid", "Source", "cell_counts", "check_columns", "missing_count", "open_source", "redact",
    "score_problems",
]

#: Memory limit and threads of the embedded DuckDB (dataset paths and ``duckdb://``).
DUCKDB_MEMORY_LIMIT = "1GB"
#: Spark shuffle partitions of a local session (few: the aggregate is small).
SPARK_PARTITIONS = 4

_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^@\s]*)(@)")


def redact(text: str) -> str:
    """Replace the password of every URL in ``text`` by ``***``."""
    return _PASSWORD.sub(r"\1***\3", str(text))


@dataclass(frozen=True)
class Source:
    """A table in an engine.

    Attributes
    ----------
    name : str
        What to call it in messages and in the summary (no password, no full path).
    table : ibis.expr.types.Table
        The rows, unevaluated.
    backend : str
        The engine's name (``duckdb``, ``postgres``, ``pyspark``).
    """

    name: str
    table: Any
    backend: str
    connection: Any = None

    def close(self) -> None:
        """Close the connection (a local Spark session is left running for reuse)."""
        if self.connection is not None and self.backend != "pyspark":
            self.connection.disconnect()

    @property
    def columns(self) -> list[str]:
        """Column names of the table."""
        return list(self.table.columns)


@dataclass(frozen=True)
class Grid:
    """The score grid of one task, as the engine needs it.

    Attributes
    ----------
    edges : ndarray of float64
        Edges of the equal-logit grid without the threshold (``bins + 1`` edges, 0 to 1).
    limit : float
        The grid's interior edges span ``[-limit, limit]`` on the logit scale.
    threshold : float or None
        The task's threshold when it was inserted as one more edge (scores at or above it
        move one bin up), else None.
    """

    edges: np.ndarray
    limit: float
    threshold: float | None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the drivers' own deprecation notices (ibis/pyspark vs duckdb 1.5, pandas 3)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _fail(what: str, where: str, exc: BaseException, hint: str) -> InputError:
    detail = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    kind = type(exc).__name__
    return InputError(f"{what} {where}: {kind}{': ' + detail if detail else ''}. Hint: {hint}")


def _duckdb(database: str = ":memory:") -> Any:
    import ibis

    return ibis.duckdb.connect(database, memory_limit=DUCKDB_MEMORY_LIMIT,
                               preserve_insertion_order=False)


def _spark(master: str) -> Any:
    import ibis
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master(master).appName("ecgaudit")
               .config("spark.sql.shuffle.partitions", str(SPARK_PARTITIONS))
               .config("spark.ui.enabled", "false").getOrCreate())
    return ibis.pyspark.connect(session)


def _connect(url: str) -> tuple[Any, str]:
    scheme = url.split(":", 1)[0].lower()
    if scheme == "spark":
        return _spark(url.split(":", 1)[1] or "local[*]"), "pyspark"
    if scheme == "duckdb":
        rest = url.split("://", 1)[1] if "://" in url else url.split(":", 1)[1]
        return _duckdb(rest or ":memory:"), "duckdb"
    if scheme in ("postgresql", "postgres"):
        import ibis

        return ibis.connect("postgres://" + url.split("://", 1)[1]), "postgres"
    raise InputError(f"--connection {redact(url)}: unknown engine '{scheme}'. Hint: use "
                     "duckdb://, postgresql://user:password@host:port/database or "
                     "spark:local[2].")


def _dataset(paths: Sequence[str | Path]) -> Source:
    files = [str(p) for p in paths]
    kinds = {Path(f).suffix.lower() for f in files}
    if not files or not kinds <= {".parquet", ".csv"} or len(kinds) != 1:
        raise InputError(f"dataset {', '.join(Path(f).name for f in files) or '(none)'}: give "
                         "Parquet (.parquet) or CSV (.csv) files of one kind (globs allowed).")
    name = ", ".join(Path(f).name for f in files[:3]) + (" ..." if len(files) > 3 else "")
    if not any(ch in f for f in files for ch in "*?[") and not all(
            Path(f).is_file() for f in files):
        missing = next(f for f in files if not Path(f).is_file())
        raise InputError(f"dataset {Path(missing).name}: file not found ({missing}).")
    con = _duckdb()
    try:
        with _quiet():
            table = (con.read_parquet(files) if kinds == {".parquet"} else con.read_csv(files))
    except Exception as exc:
        raise _fail("cannot read dataset", name, exc,
                    "check the paths (globs must match files) and that the files are "
                    "readable Parquet/CSV") from None
    return Source(name=name, table=table, backend="duckdb", connection=con)


def open_source(*, sql: str | None = None, connection: str | None = None,
                paths: Sequence[str | Path] = ()) -> Source:
    """Open the rows to summarise, leaving them in their engine.

    Parameters
    ----------
    sql : str, optional
        A ``SELECT`` query run on ``connection`` (both or neither).
    connection : str, optional
        The engine's URL (see the module docstring).
    paths : sequence of path, optional
        Parquet or CSV files (globs allowed), read by the embedded DuckDB.

    Returns
    -------
    Source

    Raises
    ------
    InputError
        On a bad URL, a failed connection or query, or unreadable files; the message
        names the connection (password hidden) and never shows a traceback.
    """
    if (sql is None) != (connection is None):
        raise InputError("--sql and --connection go together: give both (or a dataset "
                         "path instead).")
    if sql is None:
        return _dataset(paths)
    if paths:
        raise InputError("give either dataset paths or --sql/--connection, not both.")
    where = redact(connection)
    try:
        with _quiet():
            con, backend = _connect(connection)
    except InputError:
        raise
    except Exception as exc:
        raise _fail("cannot connect to", where, exc,
                    "check the URL, that the server runs, and the credentials") from None
    try:
        with _quiet():
            table = con.sql(sql)
    except Exception as exc:
        if backend != "pyspark":
            con.disconnect()
        raise _fail("query failed on", where, exc,
                    "run the query in the engine's own client first") from None
    return Source(name=where, table=table, backend=backend, connection=con)


def check_columns(source: Source, needed: Sequence[str]) -> None:
    """Raise :class:`InputError` naming every column of ``needed`` the table lacks."""
    have = source.columns
    missing = [c for c in dict.fromkeys(needed) if c not in have]
    if not missing:
        return
    parts = []
    for c in missing:
        close = difflib.get_close_matches(c, have, n=1)
        parts.append(f"'{c}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    raise InputError(f"{source.name}: column{'s' if len(missing) > 1 else ''} "
                     f"{', '.join(parts)} not found; the table has "
                     f"{', '.join(have[:20])}{' ...' if len(have) > 20 else ''}. Hint: "
                     "select them in --sql or fix the config's column names.")


def _run(source: Source, expr: Any, what: str) -> pd.DataFrame:
    try:
        with _quiet():
            return expr.to_pyarrow().to_pandas()
    except Exception as exc:
        raise _fail(f"{what} failed on", source.name, exc,
                    "check the column types (scores numeric, labels 0/1)") from None


def _probability(source: Source, score: str, logit: bool) -> Any:
    t = source.table
    if not t.schema()[score].is_numeric():
        raise InputError(f"{source.name}: column '{score}': scores must be numeric, the "
                         f"engine reports type {t.schema()[score]}. Hint: cast it in --sql.")
    x = t[score].cast("float64")
    return (1.0 / (1.0 + (-x).exp())) if logit else x


def score_problems(source: Source, score: str, *, logit: bool = False) -> list[str]:
    """Problems of a score column (missing or non-finite values, out of [0, 1]), if any."""
    import ibis

    x = source.table[score].cast("float64")
    bad = x.isnull() | x.isnan() | x.isinf()  # noqa: PD003 - an Ibis expression
    finite = ibis.ifelse(bad, ibis.null("float64"), x)
    stats = _run(source, source.table.aggregate(
        bad=bad.ifelse(1, 0).sum(), lo=finite.min(), hi=finite.max()), "the score check")
    row = stats.iloc[0]
    out = []
    n_bad = int(row["bad"] if pd.notna(row["bad"]) else 0)
    if n_bad:
        out.append(f"column '{score}': {n_bad} rows have a missing or non-finite score")
    lo, hi = row["lo"], row["hi"]
    if not logit and pd.notna(lo) and (float(lo) < 0.0 or float(hi) > 1.0):
        out.append(f"column '{score}': scores must lie in [0, 1], found {float(lo):g} to "
                   f"{float(hi):g} (logits? set score_type: logit)")
    return out


def missing_count(source: Source, column: str) -> int:
    """Count the rows whose ``column`` is missing (NULL)."""
    col = source.table[column]
    stats = _run(source, source.table.aggregate(m=col.isnull().ifelse(1, 0).sum()),  # noqa: PD003
                 "the missing-value check")
    value = stats.iloc[0, 0]
    return int(value) if pd.notna(value) else 0


def _bin(source: Source, p: Any, grid: Grid) -> tuple[Any, Any]:
    """Table with the exact grid bin of every row, and the bin column's name."""
    import ibis

    t = source.table.mutate(__p=p)
    edges = np.asarray(grid.edges, dtype=np.float64)
    bins = edges.size - 1
    lo = edges[:-1].copy()
    hi = edges[1:].copy()
    lo[0], hi[-1] = -np.inf, np.inf
    import pyarrow as pa

    table = ibis.memtable(pa.table({"__k": np.arange(bins, dtype=np.int64),
                                    "__lo": lo, "__hi": hi}))
    eps = 1e-12
    pc = t["__p"].clip(lower=eps, upper=1.0 - eps)
    step = (bins - 2) / (2.0 * grid.limit)
    approx = ((((pc / (1.0 - pc)).ln() + grid.limit) * step).floor() + 1)
    approx = approx.clip(lower=0, upper=bins - 1).cast("int64")
    t = t.mutate(__a=approx)
    j = t.join(table, t["__a"] == table["__k"])
    g = (j["__a"] - (j["__p"] < j["__lo"]).ifelse(1, 0)
         + (j["__p"] >= j["__hi"]).ifelse(1, 0))
    if grid.threshold is not None:
        g = g + (j["__p"] >= float(grid.threshold)).ifelse(1, 0)
    return j.mutate(__bin=g.cast("int32")), "__bin"


def cell_counts(source: Source, keys: Sequence[str], label: str, score: str, grid: Grid,
                *, logit: bool = False) -> pd.DataFrame:
    """Rows and score sums per (raw key values, raw label, score bin), computed in the engine.

    Parameters
    ----------
    source : Source
        The rows.
    keys : sequence of str
        Columns grouped by their raw values (the attributes' columns).
    label, score : str
        The task's label and score columns.
    grid : Grid
        The task's score grid.
    logit : bool
        Scores are logits (turned into probabilities in the engine).

    Returns
    -------
    pandas.DataFrame
        Columns ``keys``, ``label``, ``__bin``, ``__n``, ``__sum_p``; one row per
        non-empty combination (raw values as the engine returns them, NULL as missing).
    """
    p = _probability(source, score, logit)
    binned, bin_col = _bin(source, p, grid)
    group = [*dict.fromkeys([*keys, label]), bin_col]
    expr = binned.group_by(group).aggregate(__n=binned.count(),
                                            __sum_p=binned["__p"].sum())
    return _run(source, expr, "the cell aggregation")
