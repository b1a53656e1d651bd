"""``audit --from-summaries``: the pooled audit, and the per-site view, from summary files.

See :mod:`ecgaudit.pipeline._summaries` for what the audit of pooled cells is and why it
equals the row-level audit of the binned rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import age_band_labels
from ecgaudit.config import AuditConfig, parse_config
from ecgaudit.errors import ConfigError, InputError
from ecgaudit.metrics._cellengine import TaskCells
from ecgaudit.pipeline._audit import _as_config, _frame_table, _run
from ecgaudit.pipeline._cellaudit import StratumCells, cells_digest, run_cells
from ecgaudit.pipeline._progress import ProgressCallback, Steps, audit_steps
from ecgaudit.pipeline._summaries import _attribute_header, _fixed_thresholds
from ecgaudit.pipeline._sumreplicates import CellReplicates
from ecgaudit.result import AuditResult
from ecgaudit.schema import UNKNOWN_GROUP
from ecgaudit.summary import Summary, attribute_column, read_summary, replicate_column

#: Manifest note of a pooled audit: why the cohort table has no patient counts.
NO_PATIENT_COUNTS = ("unknown: summaries count ECGs per cell, not patients; small-cell "
                     "suppression uses the ECG counts")

__all__ = ["audit_summaries", "audit_summary_files", "binned_scores", "pool_cells",
           "pooled_route"]


def _mismatch(s: Summary, key: str, got: Any, want: Any, what: str) -> InputError:
    return InputError(f"summary file {s.source}: {key}: {got!r} differs from {what} {want!r}. "
                      "Hint: every site must summarise with the same config, bins and "
                      "ecgaudit schema version.")


def _check(summaries: Sequence[Summary], config: AuditConfig, site_attribute: str) -> None:
    if not summaries:
        raise ConfigError("--from-summaries needs at least one summary file")
    if site_attribute in config.attributes:
        raise ConfigError(f"attribute '{site_attribute}' is in the config, but the per-site "
                          "view adds the site under that name: rename one (--site-attribute)")
    want_tasks = [(t.name, v) for t, v in zip(config.tasks, _fixed_thresholds(config).values())]
    want_attrs = _attribute_header(config)
    first = summaries[0]
    sites: dict[str, str] = {}
    for s in summaries:
        got = [(t["name"], float(t["threshold"])) for t in s.header["tasks"]]
        if got != want_tasks:
            raise _mismatch(s, "tasks", got, want_tasks, "the config's (name, threshold)")
        if s.header["attributes"] != want_attrs:
            raise _mismatch(s, "attributes", s.header["attributes"], want_attrs, "the config's")
        for key in ("grid", "replicates"):
            if s.header.get(key) != first.header.get(key):
                raise _mismatch(s, key, s.header.get(key), first.header.get(key),
                                f"{first.source}'s")
        site = str(s.header["site"])
        if site in sites:
            raise InputError(f"summary files {sites[site]} and {s.source}: both are site "
                             f"'{site}'. Hint: name each site once (`summarize --site`).")
        sites[site] = s.source


def pool_cells(summaries: Sequence[Summary], site_attribute: str = "site") -> pd.DataFrame:
    """Cells of every summary, one table, with the site as one more attribute column."""
    parts = [s.cells.assign(**{attribute_column(site_attribute): str(s.header["site"])})
             for s in summaries]
    return pd.concat(parts, ignore_index=True)


def binned_scores(cells: pd.DataFrame, edges: Mapping[str, Sequence[float]]
                  ) -> dict[str, np.ndarray]:
    """Pooled mean score of every bin of every task (clipped into the bin)."""
    out = {}
    for task, e in edges.items():
        e = np.asarray(e, dtype=np.float64)
        mine = cells[cells["task"] == task]
        nb = e.size - 1
        n = np.bincount(mine["bin"].to_numpy(), weights=mine["n"].to_numpy(), minlength=nb)
        s = np.bincount(mine["bin"].to_numpy(), weights=mine["sum_p"].to_numpy(), minlength=nb)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, s / np.maximum(n, 1), e[:-1])
        out[task] = np.clip(mean, e[:-1], e[1:])
    return out


def _expand(cells: pd.DataFrame, strata_cols: list[str], tasks: list[str],
            reps: dict[str, np.ndarray], n_rep: int, specs: Mapping[str, Mapping[str, Any]],
            thresholds: Mapping[str, float]) -> tuple[pd.DataFrame, list[TaskCells]]:
    """One row per ECG: the strata columns and per task a label and a binned score.

    The attribute columns are converted back to raw values (:func:`_pseudo_column`) per
    cell before they are repeated. Also returns every task's cells (``stratum``: the
    cell's first expanded row; with ``n_rep`` its replicate columns).
    """
    cols: dict[str, np.ndarray] = {}
    strata = None
    out: list[TaskCells] = []
    rep_cols = [replicate_column(k) for k in range(n_rep)]
    for task in tasks:
        mine = cells[cells["task"] == task].sort_values([*strata_cols, "bin", "label"],
                                                        kind="stable")
        n = mine["n"].to_numpy(np.int64)
        block = mine.groupby(strata_cols, sort=True)["n"].sum()
        if strata is None:
            strata = block
            for c in strata_cols:
                values = mine[c].to_numpy(dtype=object)
                name = c.split(":", 1)[1]
                if name in specs:
                    values = _pseudo_column(values, specs[name])
                cols[c] = _repeat(values, n)
        elif not block.equals(strata):
            raise InputError(f"summaries: task '{task}' counts other ECGs per stratum than "
                             f"task '{tasks[0]}'. Hint: every task of a summary must cover "
                             "the same rows; re-run `ecgaudit summarize`.")
        bins = mine["bin"].to_numpy(np.int64)
        labels = mine["label"].to_numpy(np.int64)
        cols[f"label:{task}"] = np.repeat(labels.astype(np.int8), n)
        cols[f"score:{task}"] = np.repeat(reps[task][bins], n)
        out.append(TaskCells(np.cumsum(n) - n, bins, labels, n, reps[task],
                             float(thresholds[task]),
                             mine[rep_cols].to_numpy(np.int32) if n_rep else None))
    return pd.DataFrame(cols), out


def _repeat(values: np.ndarray, n: np.ndarray) -> Any:
    """``np.repeat(values, n)`` as a categorical: 1-byte codes, not an object or float per ECG.

    The cohort stage reads a categorical as it reads the raw values (ages from their text).
    """
    codes, uniques = pd.factorize(values)
    small = np.int8 if uniques.size < 128 else np.int32
    return pd.Categorical.from_codes(np.repeat(codes.astype(small), n), uniques)


def _pseudo_column(values: np.ndarray, spec: Mapping[str, Any]) -> np.ndarray:
    """Group names back to a column the cohort stage bands/reads to the same groups."""
    if spec["kind"] != "age":
        return np.where(values == UNKNOWN_GROUP, "", values).astype(object)
    bands = [float(b) for b in spec["bands"]]
    first = min(bands[0] - 1.0, (bands[0] + spec.get("min_age", 0.0)) / 2.0)
    value_of = dict(zip(age_band_labels(bands), [first, *bands]))
    return np.array([value_of.get(v, np.nan) for v in values], dtype=float)


def _pseudo_config(config: AuditConfig, site_attribute: str) -> AuditConfig:
    base = config.to_dict()
    tasks = [{"name": t.name, "label": f"label:{t.name}", "score": f"score:{t.name}"}
             for t in config.tasks]
    attrs: dict[str, Any] = {}
    for name, spec in config.attributes.items():
        a = {"column": attribute_column(name), "kind": spec.kind, "reference": spec.reference}
        if spec.kind == "age":
            a.update(bands=list(spec.bands or ()), min_age=spec.min_age, max_age=spec.max_age)
        attrs[name] = a
    attrs[site_attribute] = {"column": attribute_column(site_attribute)}
    thresholds = _fixed_thresholds(config)
    # Curves along raw ages need the rows: not in a summary (only age bands are).
    base.update(tasks=tasks, attributes=attrs, id_column=None, patient_column=None,
                continuous_axes={}, bootstrap_bins="exact",
                threshold={"rule": "fixed", "value": 0.5},
                task_thresholds={n: {"rule": "fixed", "value": v} for n, v in thresholds.items()})
    return parse_config(base, source="pooled summaries")


class _CellSteps(Steps):
    """Progress steps whose bootstrap step says that replicates are drawn per cell."""

    def relabel(self, prefix: str, text: str) -> None:
        """Relabel a step; the bootstrap step keeps the per-cell description."""
        if prefix == "bootstrap:":
            text = text.split(" (", 1)[0] + " (drawn per cell of the pooled summaries)"
        super().relabel(prefix, text)


def _check_bootstrap(config: AuditConfig, n_rep: int) -> None:
    """Refuse bootstrap settings that the cells cannot serve."""
    if config.bootstrap <= 0:
        return
    if n_rep and config.bootstrap > n_rep:
        raise ConfigError(f"bootstrap: {config.bootstrap} replicates asked for, but the "
                          f"summaries carry {n_rep}; set `bootstrap: {n_rep}` or fewer, "
                          "or summarise again with more --replicates")
    if config.bootstrap_method != "percentile":
        raise ConfigError("bootstrap_method: summaries give percentile bootstrap intervals "
                          "only (BCa needs a jackknife of the rows)")
    if config.bootstrap_bins not in (None, "auto", "exact"):
        raise ConfigError("bootstrap_bins: the summaries are binned already; leave it "
                          "unset with --from-summaries")


def audit_summaries(summaries: Sequence[Summary],
                    config: AuditConfig | Mapping[str, Any] | str | Path, *,
                    site_attribute: str = "site",
                    progress: ProgressCallback | None = None) -> AuditResult:
    """Audit the pooled cells of several sites' summaries, the site as an attribute.

    Computed on the cells (:mod:`ecgaudit.pipeline._cellaudit`: memory O(cells), not
    O(ECGs)) unless the config asks for something only rows give (``control``), which
    takes the reference path of one pseudo-row per ECG; ``manifest["pooled_engine"]``
    says which ran and why.

    Parameters
    ----------
    summaries : sequence of Summary
        One per site (:func:`ecgaudit.summary.read_summary`).
    config : AuditConfig, mapping or path
        The config the sites summarised with (tasks, fixed thresholds, attributes); its
        intersections, intervals, bootstrap, small-cell and policy settings apply.
    site_attribute : str
        Name of the per-site attribute.
    progress : callable, optional
        As for :func:`ecgaudit.pipeline.audit`.

    Returns
    -------
    AuditResult
        The same tables as a row-level audit of the binned rows; the manifest lists the
        summaries (site, ECGs, content digest) under ``summaries``.
    """
    cfg = _as_config(config)
    route = pooled_route(cfg)
    return _audit_summaries(summaries, cfg, site_attribute, progress, rows=route != "cells")


def pooled_route(config: AuditConfig) -> str:
    """``"cells"``, or why the pooled audit of ``config`` needs one pseudo-row per ECG."""
    if config.control:
        return "rows: controlled comparisons (`control`) need rows"
    return "cells"


def _audit_summaries_rows(summaries: Sequence[Summary],
                          config: AuditConfig | Mapping[str, Any] | str | Path, *,
                          site_attribute: str = "site",
                          progress: ProgressCallback | None = None) -> AuditResult:
    """Audit one pseudo-row per ECG with the row-level audit (the reference path)."""
    return _audit_summaries(summaries, _as_config(config), site_attribute, progress, rows=True)


def _audit_summaries(summaries: Sequence[Summary], cfg: AuditConfig, site_attribute: str,
                     progress: ProgressCallback | None, *, rows: bool) -> AuditResult:
    _check(summaries, cfg, site_attribute)
    cells = pool_cells(summaries, site_attribute)
    edges = summaries[0].edges()
    strata_cols = [attribute_column(a) for a in cfg.attributes] + [
        attribute_column(site_attribute)]
    n_rep = summaries[0].n_replicates
    _check_bootstrap(cfg, n_rep)
    specs = {a["name"]: {**a, "min_age": cfg.attributes[a["name"]].min_age}
             for a in summaries[0].header["attributes"]}
    pseudo = _pseudo_config(cfg, site_attribute)
    provenance = {"summaries": [{"file": s.source, "site": s.header["site"],
                                 "n_ecgs": s.header["n_ecgs"],
                                 "content_sha256": s.header["content_sha256"],
                                 "small_cell": s.header["small_cell"]} for s in summaries],
                  "score_grid": summaries[0].header["grid"]}
    steps = _CellSteps(progress, audit_steps(bootstrap=pseudo.bootstrap, read_files=False))
    if pseudo.bootstrap > 0:
        grid = summaries[0].header["grid"]["bins"]
        provenance["bootstrap_bins"] = {
            "bins": None, "reason": f"summaries: replicates drawn per cell on the {grid}-bin "
            "score grid" + (f" from the {n_rep} replicate columns" if n_rep else "")}
    provenance["n_patients_per_group"] = NO_PATIENT_COUNTS
    tasks = [t.name for t in cfg.tasks]
    reps = binned_scores(cells, edges)
    source = f"<cells of {len(summaries)} summaries>"
    if rows:
        provenance["pooled_engine"] = pooled_route(cfg) if pooled_route(cfg) != "cells" else (
            "rows: the reference path (one pseudo-row per ECG)")
        result = _rows_audit(cells, strata_cols, tasks, reps, n_rep, specs, pseudo, source,
                             provenance, steps)
    else:
        provenance["pooled_engine"] = "cells"
        digest = cells_digest(cells, strata_cols)
        stratified = _stratum_cells(cells, strata_cols, tasks, reps, n_rep, specs,
                                    _fixed_thresholds(cfg))
        del cells
        result = run_cells(stratified, pseudo, source=source, digest=digest,
                           provenance=provenance, steps=steps)
    # A summary counts ECGs, not patients: the cohort table says "unknown", never the ECG
    # count; suppression already ran on the ECG counts (the only counts the cells carry).
    result.extras["cohort"] = [dict(row, n_patients=None) for row in result.extras["cohort"]]
    return result


def _rows_audit(cells: pd.DataFrame, strata_cols: list[str], tasks: list[str],
                reps: dict[str, np.ndarray], n_rep: int, specs: Mapping[str, Mapping[str, Any]],
                pseudo: AuditConfig, source: str, provenance: dict[str, Any],
                steps: Steps) -> AuditResult:
    """Run the row-level audit of the expanded pseudo-rows, replicates drawn per cell."""
    frame, task_cells = _expand(cells, strata_cols, tasks, reps, n_rep, specs,
                                _fixed_thresholds(pseudo))
    del cells
    inputs = [("predictions", _frame_table(frame, source))]

    def hook(session: Any) -> CellReplicates:
        # Always: the session's row engine is then freed once the point estimates are in.
        return CellReplicates(session, task_cells, pseudo.calibration.clip,
                              pseudo.calibration.ece_bins)
    return _run(inputs, pseudo, None, provenance=provenance, steps=steps, replicates=hook)


def _stratum_cells(cells: pd.DataFrame, strata_cols: list[str], tasks: list[str],
                   reps: dict[str, np.ndarray], n_rep: int,
                   specs: Mapping[str, Mapping[str, Any]], thresholds: Mapping[str, float]
                   ) -> StratumCells:
    """Index the pooled cells by finest stratum; one row per stratum.

    The strata are numbered in the order of the reference path's expansion (sorted by
    the strata columns); their attribute values are converted as there
    (:func:`_pseudo_column`), one row each.
    """
    stratum = cells.groupby(strata_cols, sort=True).ngroup().to_numpy(np.int64)
    n_strata = int(stratum.max()) + 1 if stratum.size else 0
    task_of = cells["task"].to_numpy()
    n_all = cells["n"].to_numpy(np.int64)
    rep_cols = [replicate_column(k) for k in range(n_rep)]
    out: list[TaskCells] = []
    weight = None
    for task in tasks:
        mine = np.flatnonzero(task_of == task)
        w = np.bincount(stratum[mine], weights=n_all[mine], minlength=n_strata)
        if weight is None:
            weight = w
        elif not np.array_equal(w, weight):
            raise InputError(f"summaries: task '{task}' counts other ECGs per stratum than "
                             f"task '{tasks[0]}'. Hint: every task of a summary must cover "
                             "the same rows; re-run `ecgaudit summarize`.")
        sub = cells.iloc[mine]
        out.append(TaskCells(stratum[mine], sub["bin"].to_numpy(np.int64),
                             sub["label"].to_numpy(np.int64), n_all[mine], reps[task],
                             float(thresholds[task]),
                             sub[rep_cols].to_numpy(np.int32) if n_rep else None))
    first = np.zeros(n_strata, dtype=np.int64)
    first[stratum[::-1]] = np.arange(stratum.size)[::-1]
    cols = {}
    for c in strata_cols:
        values = cells[c].to_numpy(dtype=object)[first]
        name = c.split(":", 1)[1]
        if name in specs:
            values = _pseudo_column(values, specs[name])
        cols[c] = _repeat(values, np.ones(n_strata, dtype=np.int64))
    assert weight is not None
    return StratumCells(pd.DataFrame(cols), weight.astype(np.int64), out)


def audit_summary_files(paths: Sequence[str | Path],
                        config: AuditConfig | Mapping[str, Any] | str | Path,
                        **options: Any) -> AuditResult:
    """:func:`audit_summaries` of summary files (each read and verified first)."""
    return audit_summaries([read_summary(p) for p in paths], config, **options)
