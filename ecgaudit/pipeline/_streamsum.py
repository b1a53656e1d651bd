"""Patient-clustered replicates for rows that live in an engine: stream, summarise, add.

The engine aggregate of :mod:`ecgaudit.pipeline._warehouse` cannot carry the Poisson
bootstrap replicates of scheme ``poisson-hash-1`` (:mod:`ecgaudit.summary._build`): their
weights hash every patient id with BLAKE2b, which SQL engines do not share. Here the
engine still runs the user's query (filters, joins, projections), and the client streams
the columns the summary needs (every attribute, each task's label and score, the patient
column) in Arrow record batches (Ibis ``to_pyarrow_batches``: DuckDB's native batch reader,
a PostgreSQL server-side cursor; Ibis 12's PySpark backend collects the whole projected
result first and then splits it, so there memory is not bounded). Each batch goes through
the very code :func:`ecgaudit.pipeline._summaries.summarize` uses on a table in memory
(validation, age bands and recoding, binning on the shared grid, :func:`poisson_weights`),
and its cells (``n``, ``sum_p`` and every ``r:<k>``) are added to the running cells by key.
The small-stratum rule runs once, after the last batch.

A weight depends only on (patient id, replicate, seed), so a patient's ECGs get the same
weight in whichever batch, file or partition they sit: the added cells are exactly those of
the whole table. Counts and replicate columns are sums of integers; ``sum_p`` is
accumulated by the compensated (Kahan) summation pandas' ``groupby().sum()`` uses, its state
carried from batch to batch, so it is bit-identical to ``summarize`` of the rows in the order
they stream (DuckDB streams in insertion order here: files in order, rows in file order;
give other engines an ``ORDER BY`` for byte-identical files, else ``sum_p`` may differ in
its last bits). Memory: one batch (``rows x B`` int32 weights, :func:`batch_rows`) plus the
running cells (``cells x B``). Cost: ``O(rows x B)`` weight work in the client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import build_cohort
from ecgaudit.config import AuditConfig
from ecgaudit.errors import ConfigError, InputError, ValidationError
from ecgaudit.io._warehouse import Source, _quiet, check_columns, redact
from ecgaudit.metrics._compile import _jit
from ecgaudit.pipeline._audit import _as_config, _frame_table
from ecgaudit.pipeline._progress import ProgressCallback
from ecgaudit.pipeline._summaries import _fixed_thresholds, _no_references, finish_summary
from ecgaudit.pipeline._warehouse import _drop_small
from ecgaudit.summary import DEFAULT_BINS, Summary, attribute_column, grid_edges, poisson_weights
from ecgaudit.summary._build import cell_dtypes
from ecgaudit.summary._layout import MAX_BINS, MIN_BINS, bin_index, replicate_column
from ecgaudit.validate import prepare

if TYPE_CHECKING:
    from ecgaudit.result import AuditResult

__all__ = ["BATCH_WEIGHTS", "audit_clustered", "batch_rows", "clustered_replicates",
           "summarize_stream"]

#: Bootstrap weights held for one batch (rows x B, int32): 2**23 weights = 32 MiB.
BATCH_WEIGHTS = 2**23


def batch_rows(replicates: int) -> int:
    """Rows per streamed batch: ``BATCH_WEIGHTS / B``, within 1,024 .. 1,048,576."""
    return int(min(2**20, max(1024, BATCH_WEIGHTS // max(1, int(replicates)))))


@_jit
def _kahan(cell: np.ndarray, p: np.ndarray, sums: np.ndarray, comps: np.ndarray) -> None:
    """Add ``p[i]`` to ``sums[cell[i]]`` in row order, as pandas' compensated group sum."""
    for i in range(cell.size):
        c = cell[i]
        y = p[i] - comps[c]
        t = sums[c] + y
        comps[c] = t - sums[c] - y
        if comps[c] != comps[c]:  # an infinite value: pandas resets the compensation
            comps[c] = 0.0
        sums[c] = t


class _RunningCells:
    """The cells of one task, added batch by batch (keys: group names, bin, label)."""

    def __init__(self, n_bins: int, replicates: int) -> None:
        self.n_bins = int(n_bins)
        self.index: dict[tuple[Any, ...], int] = {}
        self.n = np.zeros(0, dtype=np.int64)
        self.reps = np.zeros((0, int(replicates)), dtype=np.int64)
        self.sums = np.zeros(0, dtype=np.float64)
        self.comps = np.zeros(0, dtype=np.float64)

    def _grow(self, size: int) -> None:
        if size <= self.n.size:
            return
        cap = max(size, 2 * self.n.size, 64)
        pad = cap - self.n.size
        self.n = np.concatenate([self.n, np.zeros(pad, dtype=np.int64)])
        self.reps = np.concatenate([self.reps, np.zeros((pad, self.reps.shape[1]),
                                                        dtype=np.int64)])
        self.sums = np.concatenate([self.sums, np.zeros(pad)])
        self.comps = np.concatenate([self.comps, np.zeros(pad)])

    def _slots(self, keys: list[tuple[Any, ...]]) -> np.ndarray:
        for k in keys:
            self.index.setdefault(k, len(self.index))
        self._grow(len(self.index))
        return np.array([self.index[k] for k in keys], dtype=np.int64)

    def add(self, groups: list[np.ndarray], bins: np.ndarray, labels: np.ndarray,
            p: np.ndarray, weights: np.ndarray | None) -> None:
        """Add one batch's rows (group names per attribute, bins, labels, scores, weights)."""
        key = np.zeros(bins.size, dtype=np.int64)
        uniques = []
        for names in groups:
            codes, uniq = pd.factorize(names)
            key = key * len(uniq) + codes
            uniques.append(np.asarray(uniq, dtype=object))
        key = (key * self.n_bins + bins) * 2 + labels
        uk, inv = np.unique(key, return_inverse=True)
        inv = inv.reshape(-1)
        rest, label = np.divmod(uk, 2)
        rest, bin_ = np.divmod(rest, self.n_bins)
        parts = []
        for uniq in reversed(uniques):
            rest, code = np.divmod(rest, len(uniq))
            parts.append(uniq[code])
        cols = [*reversed(parts), bin_.tolist(), label.tolist()]
        slots = self._slots(list(zip(*cols)) if cols else [()] * uk.size)
        self.n[slots] += np.bincount(inv, minlength=uk.size)
        if weights is not None and self.reps.shape[1]:
            order = np.argsort(inv, kind="stable")
            starts = np.searchsorted(inv[order], np.arange(uk.size))
            self.reps[slots] += np.add.reduceat(weights[order], starts, axis=0)
        _kahan(slots[inv], np.ascontiguousarray(p, dtype=np.float64), self.sums, self.comps)

    def frame(self, task: str, attr_cols: list[str]) -> pd.DataFrame:
        """Return the cells as :func:`ecgaudit.summary.cell_table` lays them out (sorted)."""
        keys = list(self.index)
        m = len(keys)
        data: dict[str, Any] = {c: np.array([k[i] for k in keys], dtype=object)
                                for i, c in enumerate(attr_cols)}
        data.update(bin=np.array([k[-2] for k in keys], dtype=np.int32),
                    label=np.array([k[-1] for k in keys], dtype=np.int8),
                    n=self.n[:m], sum_p=self.sums[:m])
        data.update({replicate_column(k): self.reps[:m, k] for k in range(self.reps.shape[1])})
        out = pd.DataFrame(data).sort_values([*attr_cols, "bin", "label"], kind="mergesort")
        out.insert(0, "task", task)
        return out.reset_index(drop=True)


def _batches(source: Source, columns: list[str], rows: int) -> Iterator[pd.DataFrame]:
    """Yield the query's rows, ``rows`` at a time, as pandas frames (errors: InputError)."""
    try:
        with _quiet():  # the drivers' deprecation notices (duckdb's fetch_record_batch)
            if source.backend == "duckdb":  # insertion order (files, then rows); no bar
                source.connection.raw_sql("SET preserve_insertion_order = true")
                source.connection.raw_sql("SET enable_progress_bar = false")
            reader = iter(source.table.select(columns).to_pyarrow_batches(
                chunk_size=int(rows)))
        while True:
            with _quiet():  # not across the yield: the caller's warnings stay its own
                batch = next(reader, None)
                frame = batch.to_pandas() if batch is not None and batch.num_rows else None
            if batch is None:
                return
            if frame is not None:
                yield frame
    except Exception as exc:  # the driver's own error, without a traceback or password
        detail = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise InputError(f"streaming the rows failed on {source.name}: {type(exc).__name__}"
                         f"{': ' + detail if detail else ''}. Hint: run the query in the "
                         "engine's own client first") from None


def _prepare(frame: pd.DataFrame, config: AuditConfig, source: Source, first: int
             ) -> pd.DataFrame:
    """Validate one batch as ``summarize`` validates a table; name rows of the query result."""
    try:
        return prepare(_frame_table(frame, source.name), config, one_class_ok=True).frame
    except ValidationError as exc:
        lines = []
        for p in exc.problems:
            where = (f" ({len(p.rows)} row(s) in the batch of rows {first + 1}.."
                     f"{first + len(frame)} of the query's result)" if p.rows else "")
            lines.append(f"column '{p.column}': {p.message}{where}"
                         + (f" (hint: {p.hint})" if p.hint else ""))
        hint = (f" Filter or fix them in --sql (e.g. WHERE {config.patient_column} IS NOT "
                "NULL)." if any(p.column == config.patient_column for p in exc.problems)
                else " Fix or filter these rows in --sql.")
        raise InputError(f"{source.name}: " + "; ".join(lines) + "." + hint) from None


def _needed(config: AuditConfig, unit: str | None) -> list[str]:
    cols = [spec.column or name for name, spec in config.attributes.items()]
    for t in config.tasks:
        cols += [t.label, t.score]
    return list(dict.fromkeys([*cols, *([unit] if unit else [])]))


def summarize_stream(source: Source, config: AuditConfig | Mapping[str, Any] | str | Path,
                     *, site: str | None = None, bins: int = DEFAULT_BINS,
                     min_stratum: int = 1, replicates: int = 0,
                     rows_per_batch: int | None = None) -> Summary:
    """Summarise the rows of ``source`` batch by batch, with patient-hashed replicates.

    Parameters
    ----------
    source : Source
        The rows (:func:`ecgaudit.io._warehouse.open_source`).
    config : AuditConfig, mapping or path
        The shared audit config (binary tasks, fixed thresholds); the weights are hashed
        from ``patient_column`` (else ``id_column``) and ``seed``.
    site : str, optional
        The site's name (default ``"warehouse"``).
    bins, min_stratum, replicates : int
        As for :func:`ecgaudit.pipeline._summaries.summarize`.
    rows_per_batch : int, optional
        Rows streamed at a time (default :func:`batch_rows` of ``replicates``).

    Returns
    -------
    Summary
        The summary ``summarize`` writes for the same rows in memory (same cells,
        replicate columns and header; ``sum_p`` bit-identical in the streamed row order).
    """
    cfg = _as_config(config)
    thresholds = _fixed_thresholds(cfg)
    if not MIN_BINS <= int(bins) <= MAX_BINS:
        raise ConfigError(f"--bins must be between {MIN_BINS} and {MAX_BINS}, got {bins}")
    unit = cfg.patient_column or cfg.id_column
    if replicates and unit is None:
        raise ConfigError("replicates need a patient_column (or id_column) in the config: "
                          "the bootstrap weights are hashed from it")
    columns = _needed(cfg, unit)
    check_columns(source, columns)
    # Duplicate record ids cannot be checked batch by batch (as in the engine aggregate).
    batch_cfg = cfg.model_copy(update={"id_column": None, "patient_column": unit})
    cohort_cfg = _no_references(cfg)
    edges = {t.name: grid_edges(int(bins), thresholds[t.name]) for t in cfg.tasks}
    running = {t.name: _RunningCells(edges[t.name].size - 1, int(replicates))
               for t in cfg.tasks}
    attr_names: list[str] = list(cfg.attributes)
    total = 0
    for frame in _batches(source, columns, rows_per_batch or batch_rows(replicates)):
        prepared = _prepare(frame, batch_cfg, source, total)
        total += len(prepared)
        cohort = build_cohort(prepared, cohort_cfg)
        single = [g for g in cohort.groupings if len(g.components) == 1]
        attr_names = [g.attribute for g in single]
        groups = [np.asarray(g.groups, dtype=object)[g.codes] for g in single]
        weights = (poisson_weights(prepared[unit].to_numpy(), int(replicates), cfg.seed)
                   if replicates else None)
        for t in cfg.tasks:
            p = prepared[f"p:{t.name}"].to_numpy(dtype=np.float64)
            running[t.name].add(groups, bin_index(p, edges[t.name]).astype(np.int64),
                                prepared[f"y:{t.name}"].to_numpy().astype(np.int64), p,
                                weights)
    if not total:
        raise InputError(f"{source.name}: the query returned no rows. Hint: check its "
                         "WHERE clause.")
    attr_cols = [attribute_column(a) for a in attr_names]
    cells = pd.concat([running[t.name].frame(t.name, attr_cols) for t in cfg.tasks],
                      ignore_index=True)
    cells, n_ecgs, dropped = _drop_small(cells, attr_cols, int(min_stratum))
    return finish_summary(cell_dtypes(cells, attr_cols), cfg, site=str(site or "warehouse"),
                          bins=int(bins), n_ecgs=n_ecgs,
                          small_cell={"min_stratum": int(min_stratum),
                                      "dropped_strata": dropped},
                          replicates=int(replicates))


def clustered_replicates(config: AuditConfig) -> int:
    """Replicates an engine audit streams: ``bootstrap`` with a patient column, else 0.

    Bootstrap settings the pooled audit would refuse (BCa, ``bootstrap_bins``) are refused
    here, before any row is streamed.
    """
    from ecgaudit.pipeline._fromsummaries import _check_bootstrap

    reps = int(config.bootstrap) if config.patient_column and config.bootstrap > 0 else 0
    if reps:
        _check_bootstrap(config, reps)
    return reps


def audit_clustered(summary: Summary, config: AuditConfig,
                    steps: ProgressCallback | None) -> AuditResult:
    """Audit a streamed summary; its progress step and manifest say the bootstrap's unit.

    Parameters
    ----------
    summary : Summary
        :func:`summarize_stream` of the rows, with ``config.bootstrap`` replicates.
    config : AuditConfig
        The audit config (with a ``patient_column``).
    steps : callable, optional
        The progress callback of :func:`ecgaudit.pipeline.run_audit`.

    Returns
    -------
    AuditResult
        Its manifest's ``bootstrap_bins.reason`` names the patient column.
    """
    from ecgaudit.pipeline._fromsummaries import audit_summaries

    what = (f"patient-clustered: {summary.n_replicates} Poisson replicates hashed from "
            f"'{config.patient_column}', computed on the rows streamed from the engine")

    def relabel(step: str, index: int, total: int) -> None:
        if steps is not None:
            steps(step.replace("drawn per cell of the pooled summaries", what), index, total)

    result = audit_summaries([summary], config, progress=relabel if steps else None)
    note = result.manifest.get("bootstrap_bins")
    if isinstance(note, dict) and note.get("reason"):
        note["reason"] = f"{note['reason']}; {what} (scheme poisson-hash-1)"
    return result
