"""Summaries computed where the data lives (DuckDB, PostgreSQL, Spark through Ibis).

:func:`summarize_source` writes the same :class:`~ecgaudit.summary.Summary` as
:func:`ecgaudit.pipeline._summaries.summarize` (counts exactly, score sums to rounding), but
the rows never leave their engine. Per task one query (:func:`ecgaudit.io._warehouse.
cell_counts`) groups the rows by the *raw* values of the attribute columns, the raw label
and the score bin of the shared grid; only that aggregate (a few thousand to a few hundred
thousand rows, never more than the distinct combinations) comes back. Its distinct raw
values are then validated, banded, recoded and named by the very code a row-level audit
uses (:func:`ecgaudit.validate.prepare`, :func:`ecgaudit.cohort.build_cohort`, applied to
one row per combination), so group names are those of ``summarize`` on the same rows.

Checks done in the engine: the columns exist, scores are numeric, present, finite and (for
probabilities) in [0, 1], the patient id (if configured) is never missing. Checks that
need every row in memory are not done: duplicate record ids (the warehouse's key should
guarantee them) and joins with a metadata file (join in ``--sql`` instead).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import build_cohort
from ecgaudit.config import AuditConfig, TaskConfig
from ecgaudit.errors import ConfigError, InputError, ValidationError
from ecgaudit.io._warehouse import (
    Grid,
    Source,
    cell_counts,
    check_columns,
    missing_count,
    open_source,
    score_problems,
)
from ecgaudit.pipeline._audit import _as_config, _frame_table
from ecgaudit.pipeline._summaries import _fixed_thresholds, finish_summary
from ecgaudit.summary import DEFAULT_BINS, Summary, attribute_column, grid_edges
from ecgaudit.summary._layout import LOGIT_LIMIT, MAX_BINS, MIN_BINS
from ecgaudit.validate import prepare

__all__ = ["summarize_source", "summarize_where"]

_BIN, _N, _SUM = "__bin", "__n", "__sum_p"


def _grid(bins: int, threshold: float) -> tuple[Grid, np.ndarray]:
    """Return the engine's view of a task's grid, and the grid's full edges (header)."""
    plain = grid_edges(bins, 0.0)
    full = grid_edges(bins, threshold)
    inserted = full.size > plain.size
    expected = np.unique(np.concatenate([plain, [threshold]])) if inserted else plain
    if not np.array_equal(full, expected):  # the layout changed under this module
        raise AssertionError("score grid: edges are not the plain grid plus the threshold")
    return Grid(plain, LOGIT_LIMIT, float(threshold) if inserted else None), full


def _columns(config: AuditConfig) -> dict[str, str]:
    """Column of every attribute (``{attribute: column}``)."""
    return {name: spec.column or name for name, spec in config.attributes.items()}


def _engine_checks(source: Source, config: AuditConfig) -> None:
    needed = [*_columns(config).values()]
    for t in config.tasks:
        needed += [t.label, t.score]
    if config.patient_column:
        needed.append(config.patient_column)
    check_columns(source, needed)
    problems = []
    for t in config.tasks:
        problems += score_problems(source, t.score, logit=t.score_type == "logit")
    if config.patient_column:
        missing = missing_count(source, config.patient_column)
        if missing:
            problems.append(f"column '{config.patient_column}': {missing} rows have no "
                            "patient id")
    if problems:
        raise InputError(f"{source.name}: " + "; ".join(problems) + ". Hint: fix or filter "
                         "these rows in --sql.")


def _mini_frame(counts: pd.DataFrame, config: AuditConfig, task: TaskConfig,
                edges: np.ndarray) -> pd.DataFrame:
    """One row per engine combination, with the columns ``prepare`` reads."""
    cols = dict.fromkeys([*_columns(config).values(), task.label])
    frame = counts[list(cols)].copy()
    bins = counts[_BIN].to_numpy(dtype=np.int64)
    frame[task.score] = (edges[bins] + edges[bins + 1]) / 2.0  # any score inside the bin
    ids = np.array([f"c{i}" for i in range(len(frame))], dtype=object)
    for c in (config.id_column, config.patient_column):
        if c:
            frame[c] = ids
    return frame


def _reraise(exc: ValidationError, source: Source) -> InputError:
    lines = [f"column '{p.column}': {p.message}" + (f" (hint: {p.hint})" if p.hint else "")
             for p in exc.problems]
    return InputError(f"{source.name}: " + "; ".join(lines))


def _task_cells(source: Source, config: AuditConfig, task: TaskConfig, bins: int,
                threshold: float) -> pd.DataFrame:
    grid, full = _grid(bins, threshold)
    keys = list(dict.fromkeys(_columns(config).values()))
    counts = cell_counts(source, keys, task.label, task.score, grid,
                         logit=task.score_type == "logit")
    one = config.model_copy(update={"tasks": [task]})
    mini = _mini_frame(counts, one, task, full)
    try:
        prepared = prepare(_frame_table(mini, source.name), one, one_class_ok=True).frame
    except ValidationError as exc:
        raise _reraise(exc, source) from None
    cohort = build_cohort(prepared, one)
    frame = {attribute_column(g.attribute): np.asarray(g.groups, dtype=object)[g.codes]
             for g in cohort.groupings if len(g.components) == 1}
    frame.update(bin=counts[_BIN].to_numpy(dtype=np.int32),
                 label=prepared[f"y:{task.name}"].to_numpy(dtype=np.int8),
                 n=counts[_N].to_numpy(dtype=np.int64),
                 sum_p=counts[_SUM].to_numpy(dtype=np.float64))
    cells = pd.DataFrame(frame)
    keys_out = [*(attribute_column(a) for a in config.attributes), "bin", "label"]
    cells = cells.groupby(keys_out, sort=True, dropna=False).sum().reset_index()
    cells.insert(0, "task", task.name)
    return cells


def _drop_small(cells: pd.DataFrame, attrs: list[str], k: int) -> tuple[pd.DataFrame, int, int]:
    """Leave out strata under ``k`` ECGs (sizes from the first task); kept ECGs, dropped."""
    first = cells[cells["task"] == cells["task"].iloc[0]] if len(cells) else cells
    if not attrs:
        return cells, int(first["n"].sum()), 0
    size = first.groupby(attrs, sort=False)["n"].sum()
    small = size[size < k] if k > 1 else size.iloc[:0]
    if small.empty:
        return cells, int(first["n"].sum()), 0
    key = pd.MultiIndex.from_frame(cells[attrs])
    keep = ~key.isin(small.index)
    kept = cells[keep].reset_index(drop=True)
    return kept, int(first["n"].sum() - small.sum()), len(small)


def summarize_source(source: Source, config: AuditConfig | Mapping[str, Any] | str | Path,
                     *, site: str | None = None, bins: int = DEFAULT_BINS,
                     min_stratum: int = 1) -> Summary:
    """Summarise the rows of ``source`` in their engine (layout of :mod:`ecgaudit.summary`).

    Parameters
    ----------
    source : Source
        The rows (:func:`ecgaudit.io._warehouse.open_source`).
    config : AuditConfig, mapping or path
        The shared audit config (binary tasks, fixed thresholds).
    site : str, optional
        The site's name (default ``"warehouse"``).
    bins : int
        Bins of the shared score grid.
    min_stratum : int
        Finest strata with fewer ECGs are left out whole.

    Returns
    -------
    Summary
        As :func:`ecgaudit.pipeline._summaries.summarize` without replicates.
    """
    cfg = _as_config(config)
    thresholds = _fixed_thresholds(cfg)
    if not MIN_BINS <= int(bins) <= MAX_BINS:
        raise ConfigError(f"--bins must be between {MIN_BINS} and {MAX_BINS}, got {bins}")
    _engine_checks(source, cfg)
    parts = [_task_cells(source, cfg, task, int(bins), thresholds[task.name])
             for task in cfg.tasks]
    cells = pd.concat(parts, ignore_index=True)
    attrs = [attribute_column(a) for a in cfg.attributes]
    cells, n_ecgs, dropped = _drop_small(cells, attrs, int(min_stratum))
    for c in attrs:
        cells[c] = cells[c].astype(str)
    cells["bin"] = cells["bin"].astype(np.int32)
    cells["label"] = cells["label"].astype(np.int8)
    cells["n"] = cells["n"].astype(np.int64)
    return finish_summary(cells, cfg, site=str(site or "warehouse"), bins=int(bins),
                          n_ecgs=n_ecgs, small_cell={"min_stratum": int(min_stratum),
                                                     "dropped_strata": dropped})


def summarize_where(config: AuditConfig, *, sql: str | None, connection: str | None,
                    paths: Sequence[str | Path] = (), site: str | None = None,
                    bins: int = DEFAULT_BINS, min_stratum: int = 1,
                    replicates: int = 0) -> Summary:
    """Open the rows where they live (a query on an engine, or a dataset) and summarise them.

    Parameters
    ----------
    config : AuditConfig
        The shared audit config (binary tasks, fixed thresholds).
    sql, connection : str, optional
        A ``SELECT`` and the engine URL it runs on.
    paths : sequence of str or Path
        Parquet/CSV files or globs read by the embedded DuckDB (instead of ``sql``).
    site, bins, min_stratum
        As for :func:`summarize_source`.
    replicates : int
        Patient-hashed Poisson replicates: the rows are then streamed to the client in
        batches (:func:`ecgaudit.pipeline._streamsum.summarize_stream`).

    Returns
    -------
    Summary
    """
    source = open_source(sql=sql, connection=connection, paths=[str(p) for p in paths])
    try:
        if replicates:
            from ecgaudit.pipeline._streamsum import summarize_stream

            return summarize_stream(source, config, site=site, bins=bins,
                                    min_stratum=min_stratum, replicates=replicates)
        return summarize_source(source, config, site=site, bins=bins, min_stratum=min_stratum)
    finally:
        source.close()
