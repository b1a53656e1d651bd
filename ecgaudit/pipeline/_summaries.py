"""Summaries: ``summarize`` a table into cells, and audit the pooled cells of many sites.

:func:`summarize` validates a table exactly as ``audit`` does, bands and recodes its
attributes, and counts its ECGs per (task, finest stratum, score bin, label) on the shared
grid of :mod:`ecgaudit.summary._layout`. :func:`audit_summaries` pools the cells of several
summaries (one per site), adds the site as an attribute, and runs the audit pipeline on the
*binned* cohort the cells describe: every ECG's score replaced by its bin's pooled mean score
(total ``sum_p`` over total ``n`` of the bin, over all sites, strata and labels). Because
every metric of a task depends on the rows only through its (stratum, bin, label) counts and
the bins' scores, that audit equals the row-level audit of the same rows with their scores
quantised on the same grid (tested): counts exactly, metrics to rounding.

The audit is computed on the cells (:mod:`ecgaudit.pipeline._cellaudit`), never on one row
per ECG; the reference path (``_audit_summaries_rows``, and configs with ``control``)
expands one row per ECG (``n`` copies of each cell): within a site and stratum, row ``i`` of
every task is that task's ``i``-th ECG in (bin, label) order. Either way every task's
margins are exact, while which ECG carries which pair of labels across tasks is not kept
(no audit metric uses it).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit import __version__
from ecgaudit.cohort import build_cohort
from ecgaudit.config import AuditConfig, parse_config
from ecgaudit.errors import ConfigError
from ecgaudit.io import InputTable, read_table
from ecgaudit.pipeline._audit import _as_config, _frame_table
from ecgaudit.summary import (
    DEFAULT_BINS,
    SCHEMA,
    SCHEMA_VERSION,
    Summary,
    cell_table,
    edges_digest,
    grid_edges,
    poisson_weights,
)
from ecgaudit.summary._file import content_digest, expected_columns
from ecgaudit.summary._layout import LOGIT_LIMIT, MAX_BINS, MIN_BINS
from ecgaudit.validate import prepare

__all__ = ["finish_summary", "summarize", "summarize_files"]


def _fixed_thresholds(config: AuditConfig) -> dict[str, float]:
    out = {}
    for task in config.tasks:
        if task.kind != "binary":
            raise ConfigError(f"task '{task.name}' is {task.kind}: summaries cover binary "
                              "tasks only; leave it out of the config")
        spec = config.threshold_for(task.name)
        if spec.rule != "fixed":
            raise ConfigError(
                f"threshold of task '{task.name}': rule '{spec.rule}' derives the threshold "
                "from the pooled rows, which a site cannot do alone. Agree on it first and "
                "fix it: `task_thresholds: {" + task.name + ": {rule: fixed, value: ...}}`")
        out[task.name] = float(spec.value if spec.value is not None else 0.5)
    return out


def _attribute_header(config: AuditConfig) -> list[dict[str, Any]]:
    return [{"name": name, "kind": spec.kind,
             **({"bands": list(spec.bands or ())} if spec.kind == "age" else {})}
            for name, spec in config.attributes.items()]


def _no_references(config: AuditConfig) -> AuditConfig:
    """Drop the reference groups (a site's share may lack the pooled reference)."""
    data = config.to_dict()
    for spec in data["attributes"].values():
        spec["reference"] = None
    return parse_config(data, source="summary config")


def _drop_small(groups: dict[str, np.ndarray], n: int, k: int) -> tuple[np.ndarray, int]:
    """Mask of rows kept when strata of fewer than ``k`` rows are left out; strata dropped."""
    if k <= 1 or not groups:
        return np.ones(n, dtype=bool), 0
    key = pd.DataFrame(groups).astype(str).agg("\x1f".join, axis=1)
    size = key.map(key.value_counts())
    keep = (size >= k).to_numpy()
    return keep, int(key[~keep].nunique())


def summarize(data: pd.DataFrame | InputTable, config: AuditConfig | Mapping[str, Any] | str
              | Path, *, site: str, metadata: pd.DataFrame | InputTable | None = None,
              bins: int = DEFAULT_BINS, min_stratum: int = 1, replicates: int = 0
              ) -> Summary:
    """Summarise one site's table into cells (the file's layout: :mod:`ecgaudit.summary`).

    Parameters
    ----------
    data : pandas.DataFrame or InputTable
        Predictions with labels (and demographics, unless ``metadata`` is given).
    config : AuditConfig, mapping or path
        The audit config every site shares (binary tasks, fixed thresholds).
    site : str
        The site's name (its group in the per-site view).
    metadata : pandas.DataFrame or InputTable, optional
        Demographics joined on ``config.id_column``.
    bins : int
        Bins of the shared score grid (fewer = coarser; every site must use the same).
    min_stratum : int
        Finest strata with fewer ECGs are left out of the file whole (the site's own
        small-cell rule; 1 keeps everything).
    replicates : int
        Poisson bootstrap replicates to carry (``r:<k>`` columns), weights hashed from
        ``config.patient_column`` (else ``config.id_column``) and ``config.seed``.

    Returns
    -------
    Summary
    """
    cfg = _as_config(config)
    thresholds = _fixed_thresholds(cfg)
    if not MIN_BINS <= int(bins) <= MAX_BINS:
        raise ConfigError(f"--bins must be between {MIN_BINS} and {MAX_BINS}, got {bins}")
    table = data if isinstance(data, InputTable) else _frame_table(data, "<predictions>")
    meta = (metadata if isinstance(metadata, InputTable) or metadata is None
            else _frame_table(metadata, "<metadata>"))
    frame = prepare(table, cfg, meta, one_class_ok=True).frame
    cohort = build_cohort(frame, _no_references(cfg))  # one site may lack a reference
    groups = {g.attribute: np.asarray(g.groups, dtype=object)[g.codes]
              for g in cohort.groupings if len(g.components) == 1}
    keep, dropped = _drop_small(groups, len(frame), int(min_stratum))
    unit = cfg.patient_column or cfg.id_column
    weights = None
    if replicates:
        if unit is None:
            raise ConfigError("replicates need a patient_column (or id_column) in the config: "
                              "the bootstrap weights are hashed from it")
        weights = poisson_weights(frame[unit].to_numpy()[keep], int(replicates), cfg.seed)
    tasks = [(t.name, frame[f"y:{t.name}"].to_numpy()[keep],
              frame[f"p:{t.name}"].to_numpy()[keep], grid_edges(bins, thresholds[t.name]))
             for t in cfg.tasks]
    cells = cell_table(tasks, {a: v[keep] for a, v in groups.items()}, weights)
    return finish_summary(cells, cfg, site=site, bins=bins, n_ecgs=int(keep.sum()),
                          small_cell={"min_stratum": int(min_stratum), "dropped_strata": dropped},
                          replicates=int(replicates))


def finish_summary(cells: pd.DataFrame, config: AuditConfig, *, site: str, bins: int,
                   n_ecgs: int, small_cell: dict[str, int], replicates: int = 0) -> Summary:
    """Wrap a cell table computed anywhere (pandas, SQL) into a :class:`Summary`.

    Builds the header of the layout (tasks, thresholds, grid digests, attributes,
    replicates), orders the columns and computes the content digest. Another engine that
    computes the cell table (same columns, dtypes and sort order as
    :func:`ecgaudit.summary.cell_table`) calls this to get the same file.

    Parameters
    ----------
    cells : pandas.DataFrame
        The cell table.
    config : AuditConfig
        The shared config (binary tasks, fixed thresholds).
    site, bins, n_ecgs : str, int, int
        Site name, grid bins, ECGs counted.
    small_cell : dict
        ``{"min_stratum": K, "dropped_strata": m}``.
    replicates : int
        B of the ``r:<k>`` columns (0 for none).

    Returns
    -------
    Summary
    """
    thresholds = _fixed_thresholds(config)
    unit = config.patient_column or config.id_column
    edges = {n: grid_edges(bins, v) for n, v in thresholds.items()}
    header = {
        "schema": SCHEMA, "version": SCHEMA_VERSION, "ecgaudit_version": __version__,
        "site": str(site),
        "tasks": [{"name": n, "threshold": thresholds[n], "bins": int(e.size - 1),
                   "edges_sha256": edges_digest(e)} for n, e in edges.items()],
        "attributes": _attribute_header(config),
        "grid": {"kind": "logit", "bins": int(bins), "limit": LOGIT_LIMIT},
        "n_ecgs": int(n_ecgs),
        "small_cell": dict(small_cell),
        "replicates": ({"B": int(replicates), "seed": int(config.seed),
                        "scheme": "poisson-hash-1", "unit": unit} if replicates else None),
    }
    cells = cells.loc[:, expected_columns(header)].reset_index(drop=True)
    header["content_sha256"] = content_digest(header, cells)
    return Summary(header=header, cells=cells, source=str(site))


def summarize_files(predictions: str | Path, config: AuditConfig | Mapping[str, Any] | str
                    | Path, *, metadata: str | Path | None = None, site: str | None = None,
                    **options: Any) -> Summary:
    """:func:`summarize` of files (the site defaults to the predictions file's stem)."""
    cfg = _as_config(config)
    ids = (cfg.id_column, cfg.patient_column)
    pred = read_table(predictions, text_columns=ids)
    meta = read_table(metadata, text_columns=ids) if metadata is not None else None
    return summarize(pred, cfg, site=site or Path(predictions).name.split(".")[0],
                     metadata=meta, **options)
