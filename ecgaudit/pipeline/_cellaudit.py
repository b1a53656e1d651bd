"""The pooled audit of summaries computed on the cells, never on one row per ECG.

A pooled summary is, per task, the cells (finest stratum, score bin, label) with their ECG
counts, every ECG of a bin scored at the bin's pooled mean score
(:func:`ecgaudit.pipeline._fromsummaries.binned_scores`). The reference path expands the
cells to one pseudo-row per ECG and runs the row-level audit; this module computes the same
result from the cells:

* the cohort is built on one row per finest stratum (the attribute values the pseudo-rows
  carry) and its group sizes, reference choices and cohort table are weighted by the
  strata's ECG counts;
* point estimates, closed-form intervals, ranking metrics and the bootstrap come from
  :class:`ecgaudit.metrics._cellpoints.CellSession`; metric and disparity rows, suppression,
  power and the manifest are assembled by the row audit's own functions (the tail of
  both audits is :func:`ecgaudit.pipeline._finish.finish_audit`);
* reliability curves and the calibration suite read a group's ECGs in score order: its
  cells are ordered as the row path sorts the pseudo-rows (score, then stratum, bin,
  label); groups above the row functions' ``max_exact`` are fitted from these runs of tied
  rows (:mod:`ecgaudit.metrics._runsuite`, no rows), smaller ones are expanded to their
  few pseudo-rows and fed to the row functions. Memory is O(cells) plus at most
  ``max_exact`` pseudo-rows.

The manifest's input is the pooled cells (``<cells of N summaries>``, ``rows``: the ECGs
they count) and its ``sha256`` the digest of :func:`cells_digest`, not of an expanded frame.
Configs the cells cannot serve (``control``: controlled comparisons need rows) take the
reference path (:func:`ecgaudit.pipeline._fromsummaries.audit_summaries` decides up front
and records the route in the manifest under ``pooled_engine``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import Cohort, Grouping, build_cohort, narrow_codes
from ecgaudit.config import AuditConfig
from ecgaudit.io import InputTable
from ecgaudit.metrics import BootGrouping, calibration_suite
from ecgaudit.metrics._cellengine import TaskCells
from ecgaudit.metrics._cellpoints import CellSession
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._runsuite import Runs, runs_calibration_suite, runs_reliability_curve
from ecgaudit.pipeline._audit import _point_rows
from ecgaudit.pipeline._bootstrap import bootstrap_step, choose_bins
from ecgaudit.pipeline._extras import (
    INTERSECTION_FIT,
    MIN_CURVE_ROWS,
    _curve,
    _curve_entry,
    _power_rows,
)
from ecgaudit.pipeline._finish import Tail, finish_audit, point_tables
from ecgaudit.pipeline._progress import Steps
from ecgaudit.privacy import SuppressionPlan, is_small_cell, suppress_cohort, suppress_extras
from ecgaudit.result import AuditResult
from ecgaudit.validate import prepare
from ecgaudit.validate._checks import MSG_ONE_CLASS, Problem, ValidationError

__all__ = ["StratumCells", "cells_digest", "run_cells"]

#: ``max_exact`` of :func:`calibration_suite` and :func:`reliability_curve` (defaults):
#: single-attribute groups above it are fitted from runs of cells, not rows.
SUITE_MAX_EXACT = 5000
CURVE_MAX_EXACT = 5000


class StratumCells:
    """Pooled cells indexed by finest stratum, and one row per stratum.

    Parameters
    ----------
    strata : pandas.DataFrame
        One row per finest stratum (sorted as the reference path's expansion): the
        attribute columns as the cohort stage reads them.
    weight : ndarray of int64
        ECGs of every stratum.
    tasks : list of TaskCells
        Every task's cells, ``stratum`` the row of ``strata``.
    """

    def __init__(self, strata: pd.DataFrame, weight: np.ndarray, tasks: list[TaskCells]
                 ) -> None:
        self.strata, self.weight, self.tasks = strata, weight, tasks


def cells_digest(cells: pd.DataFrame, strata_cols: Sequence[str]) -> str:
    """SHA-256 of the pooled cells (stratum, task, bin, label, ECG count), order-free.

    The cells are sorted by (task, strata, bin, label) first, so the digest depends on the
    pooled counts only, not on the order of the summary files or of their rows.
    """
    key = ["task", *strata_cols, "bin", "label"]
    table = cells[[*key, "n"]].sort_values(key, kind="stable").reset_index(drop=True)
    return hashlib.sha256(
        pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes()
        + "\x1f".join(map(str, table.columns)).encode()).hexdigest()


def _cohort(prepared: pd.DataFrame, config: AuditConfig, weight: np.ndarray) -> Cohort:
    """Build the cohort of the strata, with references chosen on the ECG counts.

    :func:`build_cohort` picks an unset reference as the largest group: on one row per
    stratum that would count strata, so the choice is redone on the weighted sizes (the
    same rule, :func:`ecgaudit.cohort._groups._reference`; an intersection's reference is
    its components' references combined, if present).
    """
    from ecgaudit.cohort._groups import INTERSECTION_SEP, _reference

    cohort = build_cohort(prepared, config)
    singles: dict[str, Grouping] = {}
    out = []
    for g in cohort.groupings:
        if g.reference is not None:
            sizes = np.bincount(g.codes, weights=weight, minlength=len(g.groups))
            if len(g.components) == 1:
                ref = _reference(g.attribute, g.groups, sizes,
                                 config.attributes[g.attribute].reference)
            else:
                parts = [singles[c] for c in g.components]
                name = INTERSECTION_SEP.join(p.groups[p.reference] for p in parts
                                             if p.reference is not None)
                ref = (g.groups.index(name) if name in g.groups
                       else _reference("", g.groups, sizes, None))
            g = Grouping(g.attribute, g.codes, g.groups, ref, g.components)
        if len(g.components) == 1:
            singles[g.attribute] = g
        out.append(g)
    return narrow_codes(Cohort(groupings=tuple(out), n=cohort.n))


def _check_classes(cells: StratumCells, config: AuditConfig, source: str) -> None:
    """Refuse a task with one class only, as the row path does, on the pooled counts."""
    problems = []
    for task, t in zip(config.tasks, cells.tasks):
        n = int(t.n.sum())
        n_pos = int(t.n[t.label == 1].sum())
        if n_pos in (0, n):
            cls = "positive cases" if n_pos else "negative cases"
            problems.append(Problem(MSG_ONE_CLASS.format(task=task.name, cls=cls, n=n),
                                    source, task.label))
    if problems:
        raise ValidationError(problems)


def _prepared(cells: StratumCells, config: AuditConfig, source: str) -> pd.DataFrame:
    """Validate the strata as the row path does (labels and scores are placeholders)."""
    frame = cells.strata.copy()
    for task in config.tasks:
        frame[task.label] = np.zeros(len(frame), dtype=np.int8)
        frame[task.score] = np.full(len(frame), 0.5)
    _check_classes(cells, config, source)
    table = InputTable(frame=frame, name=source, sha256="")
    return prepare(table, config, None, one_class_ok=True).frame


def run_cells(cells: StratumCells, config: AuditConfig, *, source: str, digest: str,
              provenance: dict[str, Any], steps: Steps) -> AuditResult:
    """Audit pooled cells: the result of the reference path, computed on the cells.

    Parameters
    ----------
    cells : StratumCells
        The pooled cells.
    config : AuditConfig
        The pseudo-row config of the reference path (binary tasks, fixed thresholds).
    source, digest : str
        Name and digest of the input in the manifest.
    provenance : dict
        Manifest entries of the summaries.
    steps : Steps
        Progress steps (the same sequence as the row audit's).

    Returns
    -------
    AuditResult
    """
    n_ecgs = int(cells.weight.sum())
    n_tasks = len(config.tasks)
    steps.next()
    frame = _prepared(cells, config, source)
    steps.relabel("bootstrap:", bootstrap_step(config, n_ecgs, n_tasks))
    steps.next()
    cohort = _cohort(frame, config, cells.weight)
    steps.next()
    thresholds = {t.name: {"value": float(c.threshold), "rule": "fixed", "target": None,
                           "derived_on": "fixed"} for t, c in zip(config.tasks, cells.tasks)}
    units = {g.attribute: np.bincount(g.codes, weights=cells.weight,
                                      minlength=len(g.groups)).astype(np.int64)
             for g in cohort.groupings}
    session = _session(cells, cohort, config)
    points = session.point_estimates(level=config.ci_level, min_events=config.min_events)
    metric_rows, disp_rows = _point_rows(cohort, config, points)
    metrics, disparities, ranking = point_tables(metric_rows, disp_rows, points, session,
                                                 config, steps)
    tail = Tail(
        inputs=[{"role": "predictions", "name": source, "sha256": digest, "rows": n_ecgs}],
        provenance={"n_ecgs": n_ecgs, "n_patients": None, "n_unmatched_metadata": 0,
                    "bootstrap_bins": choose_bins(config, n_ecgs, n_tasks), **provenance},
        cohort_rows=lambda plan: _cohort_rows(cohort, cells, config, units, plan),
        extras=lambda _, plan: suppress_extras(
            _extras(cells, cohort, config, units, points, ranking), plan))
    return finish_audit(metrics, disparities, tail, cohort=cohort, config=config,
                        full_config=config, units=units, thresholds=thresholds, steps=steps)


def _session(cells: StratumCells, cohort: Cohort, config: AuditConfig) -> CellSession:
    """Build the cell session on the row path's finest strata (same numbering, same draws)."""
    fine = finest_strata([g.codes for g in cohort.groupings], cells.weight.size)
    first = np.zeros(fine.n_strata, dtype=np.int64)
    first[fine.codes] = np.arange(fine.codes.size)
    tasks = [TaskCells(fine.codes[t.stratum], t.bin, t.label, t.n, t.rep, t.threshold,
                       t.counts) for t in cells.tasks]
    groupings = [BootGrouping(g.attribute, np.asarray(g.codes)[first], g.groups, g.reference)
                 for g in cohort.groupings]
    return CellSession([t.name for t in config.tasks], tasks, groupings, seed=config.seed,
                       clip=config.calibration.clip, ece_bins=config.calibration.ece_bins)


def _cohort_rows(cohort: Cohort, cells: StratumCells, config: AuditConfig,
                 units: dict[str, np.ndarray], plan: SuppressionPlan) -> list[dict[str, Any]]:
    """Build the row path's cohort table from the strata's ECG and positive counts."""
    positives = {t.name: np.bincount(c.stratum, weights=c.n * (c.label == 1),
                                     minlength=cells.weight.size)
                 for t, c in zip(config.tasks, cells.tasks)}
    rows = []
    for g in cohort.groupings:
        codes = np.asarray(g.codes, dtype=np.int64)
        events = {t: np.bincount(codes, weights=pos, minlength=len(g.groups)).astype(np.int64)
                  for t, pos in positives.items()}
        for i, name in enumerate(g.groups):
            rows.append({
                "attribute": g.attribute, "group": name, "n": int(units[g.attribute][i]),
                "n_patients": int(units[g.attribute][i]),
                "n_pos_by_task": {t: int(e[i]) for t, e in events.items()},
                "is_reference": g.reference == i,
            })
    return suppress_cohort(rows, plan)


def _extras(cells: StratumCells, cohort: Cohort, config: AuditConfig,
            units: dict[str, np.ndarray], points: Any, ranking: pd.DataFrame
            ) -> dict[str, Any]:
    """Curves, calibration suite, ranking and power as :func:`build_extras` gives them."""
    k = config.min_cell_size
    curves: dict[str, Any] = {}
    suite: list[dict[str, Any]] = []
    power: list[dict[str, Any]] = []
    for t_index, (task, tc) in enumerate(zip(config.tasks, cells.tasks)):
        curves[task.name], rows = _task_curves_and_suite(tc, task.name, cohort, units, config)
        suite += rows
        for g_index, g in enumerate(cohort.groupings):
            if g.reference is None or is_small_cell(units[g.attribute][g.reference], k):
                continue
            power += _power_rows(task.name, g.attribute, g.groups, g.reference,
                                 points.stats[t_index][g_index], units[g.attribute], k)
    unit_of = {(g.attribute, n): units[g.attribute][i]
               for g in cohort.groupings for i, n in enumerate(g.groups)}
    kept = [r for r in ranking.to_dict("records")
            if not is_small_cell(unit_of[(r["attribute"], r["group"])], k)]
    return {"curves": curves, "calibration_suite": suite, "ranking": kept, "power": power}


def _task_curves_and_suite(tc: TaskCells, task: str, cohort: Cohort,
                           units: dict[str, np.ndarray], config: AuditConfig
                           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Reliability curves and suite rows; each group's pseudo-rows made from its cells.

    The row path sorts the pseudo-rows stably by score; they were laid out by (stratum,
    bin, label), so a group's rows in score order are its cells ordered by (score,
    stratum, bin, label), each repeated by its count.
    """
    score = tc.rep[tc.bin]
    order = np.lexsort((tc.label, tc.bin, tc.stratum, score))
    order = order[tc.n[order] > 0]
    panels: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for g in cohort.groupings:
        single = len(g.components) <= 1
        panel = {}
        group = np.asarray(g.codes, dtype=np.int64)[tc.stratum[order]]
        by_group = order[np.argsort(group, kind="stable")]
        bounds = np.searchsorted(np.sort(group, kind="stable"), np.arange(len(g.groups) + 1))
        for i, name in enumerate(g.groups):
            if is_small_cell(units[g.attribute][i], config.min_cell_size):
                continue
            mine = by_group[bounds[i]:bounds[i + 1]]
            curve, fitted = _group_curve_and_suite(tc.label[mine], score[mine], tc.n[mine],
                                                   single, config)
            if curve is not None:
                panel[name] = curve
            rows.append({"task": task, "attribute": g.attribute, "group": name, **fitted})
        if panel:
            panels[g.attribute] = panel
    return panels, rows


def _group_curve_and_suite(label: np.ndarray, score: np.ndarray, count: np.ndarray,
                           single: bool, config: AuditConfig
                           ) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """One group's curve (single attributes) and suite from its cells in score order.

    Groups above the row functions' ``max_exact`` are fitted from the runs
    (:mod:`ecgaudit.metrics._runsuite`, no rows); smaller ones (exact lowess windows) are
    expanded to their few pseudo-rows and fitted by the row functions.
    """
    n = int(count.sum())
    fit = {} if single else INTERSECTION_FIT
    max_exact = fit.get("max_exact", SUITE_MAX_EXACT)
    bins, level = config.calibration.ece_bins, config.ci_level
    curve = None
    if n > max_exact and (not single or n > CURVE_MAX_EXACT):
        runs = Runs(score, label, count)
        if single and n >= MIN_CURVE_ROWS:
            curve = _curve_entry(runs_reliability_curve(runs, bins, level=level))
        grid = {"grid": fit["grid"]} if "grid" in fit else {}
        return curve, runs_calibration_suite(runs, **grid)
    yi = np.repeat(label.astype(np.int8), count)
    pi = np.repeat(score, count)
    if single and n >= MIN_CURVE_ROWS:
        curve = _curve(yi, pi, bins, level)
    return curve, calibration_suite(yi, pi, assume_sorted=True, **fit)

