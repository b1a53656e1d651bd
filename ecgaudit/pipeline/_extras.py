"""Per-group extras saved in ``results.json``: curves, calibration suite, ranking, power.

Reliability curves, the calibration suite (ICI, E50, E90, Emax), ranking-fairness metrics
(BPSN, BNSP, xAUC) and the minimum detectable difference vs the reference.

Only groups that pass small-cell suppression (at least ``min_cell_size`` patients) appear.
The calibration suite covers every grouping (overall, attributes and intersections);
reliability curves cover the overall cohort and single attributes (intersections would
multiply the report's panels); intersections' suites use a grid fit above 1,000 rows
(``INTERSECTION_FIT``); ranking
metrics and power cover every grouping with a reference group.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import Cohort, Grouping
from ecgaudit.config import AuditConfig
from ecgaudit.metrics import (
    GroupStats,
    PointEstimates,
    calibration_suite,
    min_detectable_auroc_difference,
    min_detectable_rate_difference,
    reliability_curve,
)
from ecgaudit.metrics._compile import HAVE_NUMBA
from ecgaudit.metrics._lowesskernels import split_by_group
from ecgaudit.metrics._order import stable_order
from ecgaudit.privacy import is_small_cell

#: Groups smaller than this get no reliability curve (too few rows for 10 bins).
MIN_CURVE_ROWS = 30
#: Calibration-suite fit of intersection groups: above 1,000 rows the lowess smooth is fitted
#: at 100 score quantiles (binned windows) instead of at every row. Against the exact fit
#: the summaries moved by at most 2e-5 on 1,500- and 5,000-row groups, at 1-2% of the cost;
#: intersections are most of the groups (228 of 285 in the 57-group benchmark).
INTERSECTION_FIT = {"max_exact": 1000, "grid": 100}
#: Tasks whose curves and suites are computed side by side (the work is numpy's, which
#: releases the GIL); each task's result is the same as computed alone.
THREADS = 2


def _curve(y: np.ndarray, p: np.ndarray, bins: int, level: float) -> dict[str, Any]:
    return _curve_entry(reliability_curve(y, p, bins, level=level, assume_sorted=True))


def _curve_entry(c: dict[str, Any]) -> dict[str, Any]:
    """Store a reliability curve as ``extras["curves"]`` does (rows or runs of cells)."""
    return {
        "bins": [{"p_mean": m, "y_mean": o, "y_low": lo, "y_high": hi, "n": int(n)}
                 for m, o, lo, hi, n in zip(c["mean_predicted"], c["observed"],
                                            c["observed_ci_low"], c["observed_ci_high"],
                                            c["n"])],
        "smooth": {"p": c["smooth_p"], "y": c["smooth_observed"]},
    }


def build_extras(frame: pd.DataFrame, cohort: Cohort, config: AuditConfig,
                 units: dict[str, np.ndarray], points: PointEstimates,
                 ranking: pd.DataFrame) -> dict[str, Any]:
    """Compute curves, calibration suite and power; attach the ranking metrics.

    Parameters
    ----------
    frame : pandas.DataFrame
        Prepared audit table.
    cohort : Cohort
        Groupings.
    config : AuditConfig
        Settings (level, bins, small-cell size).
    units : dict
        Patients (or ECGs) per group, by attribute.
    points : PointEstimates
        Per-group statistics (AUROC, sensitivity counts for the power calculation).
    ranking : pandas.DataFrame
        Ranking metrics (with bootstrap intervals when the audit has them).

    Returns
    -------
    dict
        ``curves``, ``calibration_suite``, ``ranking`` and ``power`` entries.
    """
    k = config.min_cell_size
    curves: dict[str, Any] = {}
    suite: list[dict[str, Any]] = []
    power: list[dict[str, Any]] = []
    unit_of = {(g.attribute, n): units[g.attribute][i]
               for g in cohort.groupings for i, n in enumerate(g.groups)}
    strata = _strata(cohort.groupings, cohort.n)
    offsets = [_offsets(g) for g in cohort.groupings]
    with ThreadPoolExecutor(max_workers=THREADS) as pool:  # numpy releases the GIL
        # Tasks sorted side by side, then (task, grouping) jobs: 5 tasks in 2 threads no
        # longer leave one thread alone with the last task. Results keep their order.
        ordered = list(pool.map(lambda t: _sorted_task(frame, t.name, strata), config.tasks))
        jobs = [(t, gi) for t in range(len(config.tasks)) for gi in range(len(offsets))]
        done = list(pool.map(lambda job: _grouping_curves(
            config.tasks[job[0]].name, cohort.groupings[job[1]], ordered[job[0]],
            offsets[job[1]], units, config, strata), jobs))
    per_task = [_collect(cohort.groupings, done[t * len(offsets):(t + 1) * len(offsets)])
                for t in range(len(config.tasks))]
    for t_index, task in enumerate(config.tasks):
        curves[task.name], suite_rows = per_task[t_index]
        suite += suite_rows
        for g_index, g in enumerate(cohort.groupings):
            if g.reference is None or is_small_cell(units[g.attribute][g.reference], k):
                continue
            stats = points.stats[t_index][g_index]
            power += _power_rows(task.name, g.attribute, g.groups, g.reference, stats,
                                 units[g.attribute], k)
    rows = ranking.to_dict("records")
    kept = [r for r in rows if not is_small_cell(unit_of[(r["attribute"], r["group"])], k)]
    return {"curves": curves, "calibration_suite": suite, "ranking": kept, "power": power}


def _strata(groupings: Sequence[Grouping], n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Finest cell of every row and one row of each cell, or None if there are too many.

    Every grouping is a function of the single attributes' codes, so a grouping's code of a
    cell is its code at any row of the cell (``codes[rows][cells]`` is ``codes``).
    """
    singles = [g for g in groupings if len(g.components) == 1]
    key = np.zeros(n, dtype=np.int64)
    space = 1
    for g in singles:
        space *= max(len(g.groups), 1)
        if space > max(4 * n, 1 << 16):
            return None
        key = key * len(g.groups) + g.codes
    present = np.flatnonzero(np.bincount(key, minlength=space))
    rank = np.zeros(space, dtype=np.int64)
    rank[present] = np.arange(present.size)
    cells = rank[key]
    rows = np.zeros(present.size, dtype=np.int64)
    rows[cells] = np.arange(n)  # whichever row of a cell is written last: all agree
    return cells, rows


def _split(codes: np.ndarray, n_groups: int, y: np.ndarray, p: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """``y`` and ``p`` group by group in their order (a compiled counting sort if numba)."""
    if HAVE_NUMBA:
        return split_by_group(codes, n_groups, y, p)
    by_group = _sort_small(codes, n_groups)
    return y[by_group], p[by_group]


def _sort_small(codes: np.ndarray, n_groups: int) -> np.ndarray:
    """``numpy.argsort(codes, kind="stable")``, as a radix sort of a narrow copy."""
    small = np.uint8 if n_groups <= 256 else (np.uint16 if n_groups <= 65536 else np.int64)
    return np.argsort(codes.astype(small), kind="stable")


SortedTask = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


def _offsets(g: Grouping) -> np.ndarray:
    """First row of every group once the rows are lined up group by group."""
    offsets = np.zeros(len(g.groups) + 1, dtype=np.int64)
    np.cumsum(np.bincount(g.codes, minlength=len(g.groups)), out=offsets[1:])
    return offsets


def _sorted_task(frame: pd.DataFrame, task: str,
                 strata: tuple[np.ndarray, np.ndarray] | None) -> SortedTask:
    """One task's stable score order, its labels and scores in it, and the rows' cells."""
    y = frame[f"y:{task}"].to_numpy()
    p = frame[f"p:{task}"].to_numpy(dtype=float)
    # Sorted once per task: a group's rows in this order are its stable sort by score,
    # which the calibration suite and curves would otherwise redo group by group. A stable
    # sort of the group codes in score order then lines every group up in score order.
    order = stable_order(p)
    cells = strata[0][order] if strata is not None else None
    return order, y[order], p[order], cells


def _grouping_curves(task: str, g: Grouping, ordered: SortedTask, offsets: np.ndarray,
                     units: dict[str, np.ndarray], config: AuditConfig,
                     strata: tuple[np.ndarray, np.ndarray] | None
                     ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Reliability curves (single attributes) and suite rows of one grouping's groups."""
    order, y_sorted, p_sorted, cells = ordered
    single = len(g.components) <= 1
    panel: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    if len(g.groups) == 1:
        ys, ps = y_sorted, p_sorted
    else:
        codes = g.codes[strata[1]][cells] if strata is not None else g.codes[order]
        ys, ps = _split(codes, len(g.groups), y_sorted, p_sorted)
    for i, name in enumerate(g.groups):
        if is_small_cell(units[g.attribute][i], config.min_cell_size):
            continue
        yi, pi = ys[offsets[i]:offsets[i + 1]], ps[offsets[i]:offsets[i + 1]]
        if single and yi.size >= MIN_CURVE_ROWS:
            panel[name] = _curve(yi, pi, config.calibration.ece_bins, config.ci_level)
        fit = {} if single else INTERSECTION_FIT
        rows.append({"task": task, "attribute": g.attribute, "group": name,
                     **calibration_suite(yi, pi, assume_sorted=True, **fit)})
    return panel, rows


def _collect(groupings: Sequence[Grouping],
             done: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]]
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One task's panels (groupings with a curve) and suite rows, in grouping order."""
    panels: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for g, (panel, grouping_rows) in zip(groupings, done):
        if panel:
            panels[g.attribute] = panel
        rows += grouping_rows
    return panels, rows


def _task_curves_and_suite(frame: pd.DataFrame, task: str, groupings: Sequence[Grouping],
                           units: dict[str, np.ndarray], config: AuditConfig,
                           strata: tuple[np.ndarray, np.ndarray] | None = None
                           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Reliability curves (single attributes) and calibration-suite rows (every grouping)."""
    ordered = _sorted_task(frame, task, strata)
    return _collect(groupings, [_grouping_curves(task, g, ordered, _offsets(g), units, config,
                                                 strata) for g in groupings])


def _power_rows(task: str, attribute: str, groups: tuple[str, ...], reference: int,
                stats: list[GroupStats], units: np.ndarray, k: int) -> list[dict[str, Any]]:
    ref = stats[reference]
    r_pos, r_neg = ref.n_pos, ref.n - ref.n_pos
    r_auc = ref.values["auroc"].estimate
    r_sens = ref.counts.rate("sensitivity")
    rows = []
    for i, name in enumerate(groups):
        if i == reference or is_small_cell(units[i], k):
            continue
        s = stats[i]
        n_pos, n_neg = s.n_pos, s.n - s.n_pos
        g_auc = s.values["auroc"].estimate
        num, den = s.counts.rate("sensitivity")
        mdd_auc = (min_detectable_auroc_difference(n_pos, n_neg, g_auc, r_pos, r_neg, r_auc)
                   if n_pos and n_neg and r_pos and r_neg else math.nan)
        mdd_sens = (min_detectable_rate_difference(den, num / den, r_sens[1],
                                                   r_sens[0] / r_sens[1])
                    if den and r_sens[1] else math.nan)
        rows.append({"task": task, "attribute": attribute, "group": name,
                     "reference": groups[reference],
                     "min_detectable_auroc_difference": mdd_auc,
                     "min_detectable_sensitivity_difference": mdd_sens})
    return rows
