"""Curves along numeric axes (``continuous_axes``): tidy rows for ``extras["curves_by_value"]``.

Per axis, task, and group of every ``by`` attribute (plus the whole cohort), the kernel-
weighted AUROC, sensitivity, specificity and O/E ratio of
:mod:`ecgaudit.metrics._kernelcurves` on a grid, with pointwise percentile bootstrap
bands from the audit's own replicates (``bootstrap: B``, ``seed``; the same stratified,
patient-clustered draws as the audit's intervals). See ``docs/views.md``.

Small-group rules: a grid point outside a group's observed range is withheld (no
extrapolation); a ``by`` group with fewer than ``min_cell_size`` patients gets no curve
(listed in ``withheld`` without a count); a grid point whose Kish effective size is below
``min_effective_n`` (default ``max(30, min_cell_size)``), or whose effective positives /
negatives are below ``min_events`` where the metric needs them, is withheld with a reason;
a band of zero width or from too many degenerate replicates is withheld with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import Cohort
from ecgaudit.config import AuditConfig, ContinuousAxisConfig
from ecgaudit.errors import Problem, ValidationError
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._kernelcurves import (
    CURVE_METRICS,
    CurveInputs,
    bandwidth_rule,
    curve_metrics,
    curve_sums,
    kernel_weights,
)
from ecgaudit.privacy import too_small_to_draw
from ecgaudit.schema import OVERALL_ATTRIBUTE, OVERALL_GROUP
from ecgaudit.validate._checks import ROW_PRED

__all__ = ["CURVE_COLUMNS", "build_curves"]

#: Columns of a curve row; the axis value's column is named after the axis (e.g. ``age``).
CURVE_COLUMNS = ("task", "axis", "by", "group", "metric", "estimate", "ci_low", "ci_high",
                 "ci_method", "n_eff", "status", "reason")
#: Replicates drawn per block: at most 64, and at most ~8M replicate counts in memory.
_BLOCK = 64
_BLOCK_CELLS = 2**23
#: What each metric needs besides the effective size: positives, negatives or both.
_NEEDS = {"auroc": ("pos", "neg"), "sensitivity": ("pos",), "specificity": ("neg",),
          "oe_ratio": ("pos",)}


@dataclass
class _Panel:
    task: str
    axis: str
    by: str
    group: str
    idx: np.ndarray
    inputs: CurveInputs
    span: tuple[float, float]
    point: dict[str, np.ndarray]
    reps: list[dict[str, np.ndarray]]


def axis_values(frame: pd.DataFrame, name: str, spec: ContinuousAxisConfig,
                config: AuditConfig) -> np.ndarray:
    """Numeric values of an axis (NaN when unknown, unparseable or outside the range)."""
    column = spec.column or name
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    text = raw.astype(str).str.strip()
    bad = np.isnan(values) & raw.notna().to_numpy() & (text != "").to_numpy() & ~text.str.lower(
        ).isin(["nan", "na", "none", "null"]).to_numpy()
    if bad.any():
        rows = (frame[ROW_PRED].to_numpy()[bad] if ROW_PRED in frame.columns
                else np.flatnonzero(bad) + 1)
        raise ValidationError([Problem(
            f"continuous axis '{name}' needs numbers; {int(bad.sum())} values are not "
            f"numeric (e.g. {text[bad].iloc[0][:20]!r})", column=column,
            rows=tuple(int(r) for r in rows[:50]),
            hint="give a number or leave the cell empty (unknown)")])
    lo_hi = spec.valid_range
    if lo_hi is None:
        attr = next((a for a in config.attributes.values()
                     if a.column == column and a.kind == "age"), None)
        lo_hi = (attr.min_age, attr.max_age) if attr is not None else None
    if lo_hi is not None:
        values = np.where((values >= lo_hi[0]) & (values <= lo_hi[1]), values, np.nan)
    return values


def axis_grid(values: np.ndarray, spec: ContinuousAxisConfig) -> np.ndarray:
    """Return the configured grid, else ``grid_points`` points from the 5th to 95th pct."""
    if spec.grid is not None:
        return np.asarray(spec.grid, dtype=float)
    known = values[np.isfinite(values)]
    if known.size == 0:
        return np.zeros(0)
    lo, hi = np.percentile(known, [5, 95])
    return np.round(np.linspace(lo, hi, spec.grid_points), 2)


def build_curves(frame: pd.DataFrame, cohort: Cohort, config: AuditConfig,
                 thresholds: dict[str, dict[str, Any]], patients: np.ndarray | None,
                 units: dict[str, np.ndarray]) -> dict[str, Any]:
    """Compute every configured axis's curves.

    Parameters
    ----------
    frame : pandas.DataFrame
        Prepared audit table (``y:<task>``, ``p:<task>`` and the axis columns).
    cohort : Cohort
        Groupings (the ``by`` attributes, and the bootstrap strata).
    config : AuditConfig
        ``continuous_axes``, ``bootstrap``, ``seed``, small-cell settings.
    thresholds : dict
        Frozen threshold per task.
    patients : ndarray, optional
        Patient code per row (clustered replicates).
    units : dict
        Patients (or ECGs) per group, by attribute.

    Returns
    -------
    dict
        ``curves_by_value`` (tidy rows) and ``curves_by_value_axes`` (per axis: bandwidth,
        grid, rule, withheld groups).
    """
    if not config.continuous_axes:
        return {}
    panels: list[_Panel] = []
    axes_meta: dict[str, Any] = {}
    for name, spec in config.continuous_axes.items():
        values = axis_values(frame, name, spec, config)
        h = bandwidth_rule(values, spec.bandwidth)
        grid = axis_grid(values, spec)
        withheld: list[dict[str, str]] = []
        meta = {"column": spec.column or name, "bandwidth": h, "grid": grid.tolist(),
                "bandwidth_rule": spec.bandwidth if isinstance(spec.bandwidth, str)
                else "fixed", "by": [OVERALL_ATTRIBUTE, *spec.by],
                "min_effective_n": _min_eff(spec, config), "withheld": withheld}
        axes_meta[name] = meta
        if not math.isfinite(h) or grid.size == 0:
            meta["reason"] = "fewer than two distinct known values: no curve"
            continue
        kernel = kernel_weights(values, grid, h)
        for by_name, group, idx in _subsets(cohort, spec, config, units, withheld):
            for task in config.tasks:
                y = frame[f"y:{task.name}"].to_numpy()[idx]
                p = frame[f"p:{task.name}"].to_numpy(dtype=float)[idx]
                inputs = CurveInputs(y, p, float(thresholds[task.name]["value"]),
                                     kernel[:, idx])
                point = curve_metrics(curve_sums(inputs, compiled=_compiled(config))[0])
                panels.append(_Panel(task.name, name, by_name, group, idx, inputs,
                                     _span(values[idx]), point, []))
    _replicates(panels, frame, cohort, config, patients)
    rows: list[dict[str, Any]] = []
    for panel in panels:
        rows += _panel_rows(panel, np.asarray(axes_meta[panel.axis]["grid"]),
                            config.continuous_axes[panel.axis], config)
    return {"curves_by_value": rows, "curves_by_value_axes": axes_meta}


def _span(values: np.ndarray) -> tuple[float, float]:
    known = values[np.isfinite(values)]
    return (float(known.min()), float(known.max())) if known.size else (math.nan, math.nan)


def _min_eff(spec: ContinuousAxisConfig, config: AuditConfig) -> int:
    return spec.min_effective_n or max(30, config.min_cell_size)


def _compiled(config: AuditConfig) -> bool | None:
    return False if config.engine == "numpy" else None


def _subsets(cohort: Cohort, spec: ContinuousAxisConfig, config: AuditConfig,
             units: dict[str, np.ndarray], withheld: list[dict[str, str]]
             ) -> list[tuple[str, str, np.ndarray]]:
    out = [(OVERALL_ATTRIBUTE, OVERALL_GROUP, np.arange(cohort.n))]
    for by in spec.by:
        g = cohort.grouping(by)
        for i, group in enumerate(g.groups):
            if too_small_to_draw(units[by][i], config.min_cell_size):
                withheld.append({"by": by, "group": group,
                                 "reason": f"fewer than {config.min_cell_size} patients"})
                continue
            out.append((by, group, np.flatnonzero(g.codes == i)))
    return out


def _replicates(panels: list[_Panel], frame: pd.DataFrame, cohort: Cohort,
                config: AuditConfig, patients: np.ndarray | None) -> None:
    if config.bootstrap <= 0 or not panels:
        return
    strata = finest_strata([g.codes for g in cohort.groupings], len(frame))
    sampler = Sampler(strata.codes, patients, config.seed,
                      compiled=False if config.engine == "numpy" else None)
    block = max(1, min(_BLOCK, _BLOCK_CELLS // max(len(frame), 1)))
    for start in range(0, config.bootstrap, block):
        counts = sampler.draw(range(start, min(start + block, config.bootstrap)))
        for panel in panels:
            sums = curve_sums(panel.inputs, counts[:, panel.idx], compiled=_compiled(config))
            panel.reps.append(curve_metrics(sums))


def _panel_rows(panel: _Panel, grid: np.ndarray, spec: ContinuousAxisConfig,
                config: AuditConfig) -> list[dict[str, Any]]:
    min_eff = _min_eff(spec, config)
    level = config.ci_level
    reps = ({m: np.concatenate([r[m] for r in panel.reps]) for m in CURVE_METRICS}
            if panel.reps else {})
    method = f"bootstrap-percentile-pointwise (B={config.bootstrap})" if reps else "none"
    rows = []
    for j, x in enumerate(grid):
        n_eff = float(panel.point["n_eff"][j])
        for metric in CURVE_METRICS:
            row = {"task": panel.task, "axis": panel.axis, "by": panel.by,
                   "group": panel.group, panel.axis: float(x), "metric": metric,
                   "estimate": None, "ci_low": None, "ci_high": None, "ci_method": method,
                   "n_eff": None, "status": "withheld", "reason": ""}
            why = (None if panel.span[0] <= x <= panel.span[1]
                   else "outside the group's observed range (no extrapolation)")
            why = why or _too_small(panel.point, j, metric, min_eff, config.min_events)
            est = float(panel.point[metric][j])
            if why is None and not math.isfinite(est):
                why = "undefined at this point"
            if why is not None:
                row["reason"] = why
                rows.append(row)
                continue
            row.update(estimate=est, n_eff=round(n_eff, 1), status="ok")
            if reps:
                lo, hi, note = _band(reps[metric][:, j], level,
                                     config.bootstrap_max_degenerate)
                row.update(ci_low=lo, ci_high=hi, reason=note)
            else:
                row["reason"] = "no band: bootstrap is 0"
            rows.append(row)
    return rows


def _too_small(point: dict[str, np.ndarray], j: int, metric: str, min_eff: int,
               min_events: int) -> str | None:
    if point["n_eff"][j] < min_eff:
        return f"effective sample size below {min_eff}"
    for cls in _NEEDS[metric]:
        if point[f"n_eff_{cls}"][j] < min_events:
            word = "positives" if cls == "pos" else "negatives"
            return f"effective {word} below {min_events}"
    return None


def _band(values: np.ndarray, level: float, max_degenerate: float
          ) -> tuple[float | None, float | None, str]:
    finite = values[np.isfinite(values)]
    share = 1.0 - finite.size / values.size
    if share > max_degenerate:
        return None, None, f"no band: {share:.0%} of replicates undefined"
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(finite, [a, 1.0 - a])
    if not hi > lo:
        return None, None, "no band: bootstrap band of zero width"
    return float(lo), float(hi), ""
