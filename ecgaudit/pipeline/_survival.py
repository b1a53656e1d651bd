"""The audit of survival (time-to-event) tasks: prepared table -> :class:`AuditResult`.

Called from :func:`ecgaudit.pipeline._audit._run` when the config's tasks are of kind
``survival``. The metric and disparity rows (with a ``horizon`` column) go through the same
small-cell suppression, multiplicity adjustment and manifest as binary audits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import Cohort, Grouping
from ecgaudit.config import AuditConfig
from ecgaudit.disparity import adjust_pvalues
from ecgaudit.errors import ConfigError
from ecgaudit.io import InputTable
from ecgaudit.metrics._survaudit import SurvCell, SurvTask, survival_audit
from ecgaudit.metrics._survkm import SurvivalRows, aalen_johansen, kaplan_meier, step_at
from ecgaudit.pipeline._manifest import build_manifest
from ecgaudit.privacy import (
    SuppressionPlan,
    plan_suppression,
    suppress_cohort,
    suppress_disparities,
    suppress_metrics,
)
from ecgaudit.result import AuditResult
from ecgaudit.schema import DISPARITY_COLUMNS, METRIC_COLUMNS
from ecgaudit.validate import PreparedData
from ecgaudit.validate._survival import survival_config_problems

__all__ = ["add_survival", "is_survival", "plan_rows", "run_survival", "survival_extras",
           "survival_tasks", "without_survival"]

#: Points of each stored Kaplan-Meier curve (for the report); calibration bins per group.
KM_POINTS = 60
CAL_BINS = 5


def is_survival(config: AuditConfig) -> bool:
    """Whether every task is a survival task (mixed configs: :func:`add_survival`)."""
    problems = survival_config_problems(config)
    if problems:
        raise ConfigError("invalid audit config:\n" + "\n".join(f"  - {p}" for p in problems))
    return bool(config.tasks) and all(t.kind == "survival" for t in config.tasks)


def without_survival(config: AuditConfig) -> AuditConfig:
    """Return the config of the binary/continuous path of a mixed audit (``config`` if none)."""
    if not any(t.kind == "survival" for t in config.tasks):
        return config
    return config.model_copy(update={"tasks": tuple(t for t in config.tasks
                                                    if t.kind != "survival")})


def add_survival(metrics: pd.DataFrame, disparities: pd.DataFrame, frame: pd.DataFrame,
                 cohort: Cohort, config: AuditConfig, patients: np.ndarray | None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, list[SurvCell]]:
    """Append the survival tasks' rows of a mixed audit (unsuppressed, unadjusted).

    The caller suppresses and adjusts the joint tables (:func:`plan_rows` gives the rows
    its suppression plan reads) and adds :func:`survival_extras`.
    """
    sub = config.model_copy(update={"tasks": tuple(t for t in config.tasks
                                                   if t.kind == "survival")})
    if not sub.tasks:
        return metrics, disparities, []
    tasks = survival_tasks(frame, sub)
    m_rows, d_rows, cells = _audit_tasks(tasks, cohort, patients, config)
    new_m = pd.DataFrame(m_rows, columns=list(metrics.columns))
    new_d = pd.DataFrame(d_rows, columns=list(disparities.columns))
    metrics = pd.concat([df for df in (metrics, new_m) if len(df)], ignore_index=True)
    disparities = (pd.concat([df for df in (disparities, new_d) if len(df)], ignore_index=True)
                   if len(disparities) or len(new_d) else disparities)
    return metrics, disparities, cells


def _audit_tasks(tasks: list[SurvTask], cohort: Cohort, patients: np.ndarray | None,
                 config: AuditConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                               list[SurvCell]]:
    """:func:`survival_audit` of ``tasks`` with the config's interval, bootstrap and engine."""
    return survival_audit(
        tasks, cohort.groupings, patients, level=config.ci_level,
        min_events=config.min_events, n_boot=config.bootstrap, seed=config.seed,
        max_degenerate=config.bootstrap_max_degenerate, method=config.bootstrap_method,
        compiled={"auto": None, "compiled": True, "numpy": False}[config.engine])


def plan_rows(metrics: pd.DataFrame, config: AuditConfig) -> pd.DataFrame:
    """Rows the suppression plan reads: survival rates are IPCW proportions (no cells)."""
    surv = {t.name for t in config.tasks if t.kind == "survival"}
    if not surv:
        return metrics
    drop = metrics["task"].isin(surv) & metrics["metric"].isin(["sensitivity", "specificity"])
    return metrics.loc[~drop]


def survival_extras(cells: list[SurvCell], frame: pd.DataFrame, cohort: Cohort,
                    config: AuditConfig, plan: SuppressionPlan) -> dict[str, Any]:
    """``extras["survival_curves"]`` of a mixed audit (nothing without survival tasks)."""
    if not cells:
        return {}
    sub = config.model_copy(update={"tasks": tuple(t for t in config.tasks
                                                   if t.kind == "survival")})
    ok = {(g.attribute, n): not plan.group_hidden(g.attribute, n)
          for g in cohort.groupings for n in g.groups}
    return {"survival_curves": _curves(cells, survival_tasks(frame, sub), cohort, ok,
                                       config.min_cell_size)}


def survival_tasks(frame: pd.DataFrame, config: AuditConfig) -> list[SurvTask]:
    """Return the survival tasks of ``config`` as kernel inputs from a prepared frame."""
    out = []
    for t in config.tasks:
        prob = frame[f"p:{t.name}"].to_numpy(np.float64) if f"p:{t.name}" in frame else None
        value = config.threshold_for(t.name).value
        out.append(SurvTask(t.name, frame[f"t:{t.name}"].to_numpy(np.float64),
                            frame[f"e:{t.name}"].to_numpy(np.int8),
                            frame[f"s:{t.name}"].to_numpy(np.float64), prob,
                            float(0.5 if value is None else value),
                            tuple(sorted(float(h) for h in t.horizons))))
    return out


def _units(g: Grouping, patients: np.ndarray | None) -> np.ndarray:
    if patients is None:
        return g.sizes()
    n_p = int(patients.max()) + 1 if patients.size else 1
    pairs = np.unique(np.asarray(g.codes, dtype=np.int64) * n_p + patients)
    return np.bincount(pairs // n_p, minlength=len(g.groups))


def _curves(cells: list[SurvCell], tasks: list[SurvTask], cohort: Cohort,
            ok: dict[tuple[str, str], bool], k: int) -> dict[str, Any]:
    """Kaplan-Meier curves and binned calibration at each horizon, per single-attribute group.

    Calibration bins are drawn only when every bin holds at least ``k`` patients' rows, and
    carry no counts (no small count can be read off an export).
    """
    out: dict[str, Any] = {}
    for c in cells:
        g = cohort.groupings[c.grouping]
        name = g.groups[c.group]
        if len(g.components) > 1 or not ok[(g.attribute, name)] or c.g.n == 0:
            continue
        t = tasks[c.task]
        r = c.g.rows
        s = kaplan_meier(r, np.ones(c.g.n))
        grid = np.linspace(0.0, float(r.time.max()), KM_POINTS)
        entry: dict[str, Any] = {"km": {"time": grid.tolist(),
                                        "survival": step_at(r.uniq, s, grid).tolist()}}
        if c.g.prob is not None and c.g.n >= k * CAL_BINS:
            entry["calibration"] = _calibration_bins(c, t)
        out.setdefault(t.name, {}).setdefault(g.attribute, {})[name] = entry
    return out


def _calibration_bins(c: SurvCell, t: SurvTask) -> dict[str, Any]:
    """Observed (Kaplan-Meier / Aalen-Johansen) vs mean predicted risk in risk quintiles."""
    p = np.asarray(c.g.prob)
    r = c.g.rows
    bins = [b for b in np.array_split(np.argsort(p, kind="stable"), CAL_BINS) if b.size >= 2]
    res: dict[str, Any] = {}
    for h in t.horizons:
        pts = []
        for b in bins:
            sub = SurvivalRows.build(r.time[b], r.event[b])
            cif = aalen_johansen(sub, np.ones(b.size))
            obs = float(step_at(sub.uniq, cif, h, before=0.0)) if h < sub.time.max() else None
            pts.append({"predicted": float(p[b].mean()), "observed": obs})
        res[f"{h:g}"] = pts
    return res


def run_survival(prepared: PreparedData, cohort: Cohort, config: AuditConfig,
                 inputs: list[tuple[str, InputTable]],
                 provenance: dict[str, Any] | None) -> AuditResult:
    """Audit the survival tasks of ``config`` on the prepared table.

    Parameters
    ----------
    prepared : PreparedData
        Validated table (with ``t:``, ``e:``, ``s:`` and possibly ``p:`` columns).
    cohort : Cohort
        Groupings.
    config : AuditConfig
        The audit configuration (survival tasks only).
    inputs : list
        ``(role, InputTable)`` of the input files, for the manifest.
    provenance : dict, optional
        Extra manifest entries.

    Returns
    -------
    AuditResult
    """
    frame = prepared.frame
    patients = None
    if config.patient_column:
        _, patients = np.unique(frame[config.patient_column].astype(str).to_numpy(),
                                return_inverse=True)
    tasks = survival_tasks(frame, config)
    m_rows, d_rows, cells = _audit_tasks(tasks, cohort, patients, config)
    units = {g.attribute: _units(g, patients) for g in cohort.groupings}
    unit_of = {(g.attribute, n): int(units[g.attribute][i])
               for g in cohort.groupings for i, n in enumerate(g.groups)}
    metrics = pd.DataFrame(m_rows, columns=list(METRIC_COLUMNS))
    # The binary audit's plan: groups of 1..k-1 patients and event counts of 1..k-1, with
    # their complements (rates at a horizon are IPCW-weighted: no integer cell to rebuild).
    plan = plan_suppression(metrics, unit_of, config.min_cell_size, rate_cells=False)
    metrics = suppress_metrics(metrics, plan)
    disparities = pd.DataFrame(d_rows, columns=[c for c in DISPARITY_COLUMNS
                                                if c not in ("p_holm", "p_bh")])
    disparities = disparities.assign(p_holm=np.nan, p_bh=np.nan)
    if len(disparities):
        disparities = suppress_disparities(disparities, metrics)
        disparities = adjust_pvalues(disparities, config.multiplicity.family)
    disparities = disparities.loc[:, list(DISPARITY_COLUMNS)]
    thresholds = {t.name: {"value": t.threshold, "rule": "fixed", "target": None,
                           "derived_on": "fixed"} for t in tasks}
    manifest = build_manifest(
        config=config.to_dict(),
        inputs=[{"role": role, "name": t.name, "sha256": t.sha256, "rows": len(t.frame)}
                for role, t in inputs],
        seed=config.seed, thresholds=thresholds,
        extra={"n_ecgs": len(frame),
               "n_patients": int(patients.max() + 1) if patients is not None else None,
               "n_unmatched_metadata": prepared.n_unmatched_metadata,
               "outcome": "survival", "bootstrap_bins": _bins_note(config),
               **(provenance or {})})
    ok = {k: not plan.group_hidden(*k) for k in unit_of}
    extras = {
        "cohort": _cohort_rows(cohort, tasks, units, plan),
        "reference_groups": cohort.references(),
        "tasks": [t.name for t in tasks],
        "attributes": [g.attribute for g in cohort.groupings],
        "survival_curves": _curves(cells, tasks, cohort, ok, config.min_cell_size),
        "suppression": {"min_cell_size": plan.k, **plan.counts()},
    }
    return AuditResult(metrics=metrics, disparities=disparities, manifest=manifest,
                       extras=extras, config=config)


def _bins_note(config: AuditConfig) -> dict[str, Any]:
    """Return the replicate mode as binary audits record it (survival replicates are exact)."""
    if config.bootstrap <= 0:
        return {"bins": None, "reason": "bootstrap off (closed-form intervals only)"}
    return {"bins": None, "reason": "survival tasks: exact replicates (no binned mode, "
                                    "docs/survival.md)"}


def _cohort_rows(cohort: Cohort, tasks: list[SurvTask], units: dict[str, np.ndarray],
                 plan: SuppressionPlan) -> list[dict[str, Any]]:
    rows = []
    for g in cohort.groupings:
        sizes = g.sizes()
        events = {t.name: np.bincount(np.asarray(g.codes)[t.event == 1],
                                      minlength=len(g.groups)) for t in tasks}
        for i, name in enumerate(g.groups):
            rows.append({"attribute": g.attribute, "group": name, "n": int(sizes[i]),
                         "n_patients": int(units[g.attribute][i]),
                         "n_pos_by_task": {t: int(e[i]) for t, e in events.items()},
                         "is_reference": g.reference == i})
    return suppress_cohort(rows, plan)
