"""The tail of an audit, shared by the row audit and the pooled audit of cells.

From the point-estimate rows to the :class:`AuditResult`: the metric and disparity tables
(with bootstrap intervals when the config asks for them), the small-cell suppression plan,
suppressed metrics and disparities, the p-value adjustment, the column order, the manifest
and the extras. What differs between the two audits (the manifest's inputs and provenance,
the cohort table, the extras computed from the data) is given by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import Cohort
from ecgaudit.config import AuditConfig
from ecgaudit.disparity import adjust_pvalues
from ecgaudit.metrics import MetricSession, PointEstimates
from ecgaudit.metrics._cellpoints import CellSession
from ecgaudit.pipeline._bootstrap import apply_bootstrap
from ecgaudit.pipeline._manifest import build_manifest
from ecgaudit.pipeline._progress import Steps
from ecgaudit.pipeline._survival import plan_rows
from ecgaudit.privacy import (
    SuppressionPlan,
    plan_suppression,
    suppress_disparities,
    suppress_metrics,
)
from ecgaudit.result import AuditResult
from ecgaudit.schema import DISPARITY_COLUMNS, METRIC_COLUMNS

__all__ = ["Tail", "finish_audit", "point_tables"]


def point_tables(metric_rows: list[dict[str, Any]], disp_rows: list[dict[str, Any]],
                 points: PointEstimates, session: MetricSession | CellSession | None,
                 config: AuditConfig, steps: Steps
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Metric, disparity and ranking tables, with bootstrap intervals if the config asks.

    Parameters
    ----------
    metric_rows, disp_rows : list of dict
        Metric and disparity rows of the point estimates (closed-form intervals).
    points : PointEstimates
        The point estimates (their ranking metrics).
    session : MetricSession, CellSession or None
        The session whose ``bootstrap`` gives the intervals (None without binary tasks).
    config : AuditConfig
        The binary part of the config (no tasks: continuous only, no bootstrap to run).
    steps : Steps
        Progress steps (the bootstrap step is announced when ``config.bootstrap > 0``).

    Returns
    -------
    tuple of pandas.DataFrame
        ``metrics``, ``disparities`` (without ``p_holm``, ``p_bh``) and ``ranking``.
    """
    ranking = points.ranking
    metrics = pd.DataFrame(metric_rows, columns=list(METRIC_COLUMNS))
    disparities = pd.DataFrame(disp_rows, columns=[c for c in DISPARITY_COLUMNS
                                                   if c not in ("p_holm", "p_bh")])
    if config.bootstrap > 0:
        steps.next()
        if config.tasks:  # no binary task: continuous only
            metrics, disparities, ranking = apply_bootstrap(metrics, disparities, session,
                                                            config)
    return metrics, disparities, ranking


@dataclass(frozen=True)
class Tail:
    """What the row audit and the cells audit put differently into their result.

    Attributes
    ----------
    inputs : list of dict
        The manifest's ``inputs`` (``{role, name, sha256, rows}``).
    provenance : dict
        The manifest's extra entries (``n_ecgs``, ``bootstrap_bins``, ...).
    cohort_rows : callable
        ``cohort_rows(plan)``: the suppressed cohort table.
    extras : callable
        ``extras(metrics, plan)``: the suppressed extras between ``attributes`` and
        ``suppression`` (``metrics``: the suppressed metric table).
    """

    inputs: list[dict[str, Any]]
    provenance: dict[str, Any]
    cohort_rows: Callable[[SuppressionPlan], list[dict[str, Any]]]
    extras: Callable[[pd.DataFrame, SuppressionPlan], dict[str, Any]]


def finish_audit(metrics: pd.DataFrame, disparities: pd.DataFrame, tail: Tail, *,
                 cohort: Cohort, config: AuditConfig, full_config: AuditConfig,
                 units: dict[str, np.ndarray], thresholds: dict[str, dict[str, Any]],
                 steps: Steps) -> AuditResult:
    """Suppress, adjust the p-values, build the manifest and the extras: the result.

    Parameters
    ----------
    metrics, disparities : pandas.DataFrame
        The tables of :func:`point_tables` (and of any continuous or survival tasks).
    tail : Tail
        The manifest entries, cohort table and extras of this audit.
    cohort : Cohort
        The groupings.
    config : AuditConfig
        The binary part of the config (small-cell size, multiplicity, seed, tasks).
    full_config : AuditConfig
        The whole config (recorded in the manifest and the result).
    units : dict
        Patients (or ECGs) per group, by attribute.
    thresholds : dict
        ``{task: {value, rule, target, derived_on}}``.
    steps : Steps
        Progress steps (suppression, then extras, then done).

    Returns
    -------
    AuditResult
    """
    steps.next()
    unit_of = {(g.attribute, name): int(units[g.attribute][i])
               for g in cohort.groupings for i, name in enumerate(g.groups)}
    plan = plan_suppression(plan_rows(metrics, full_config), unit_of, config.min_cell_size)
    metrics = suppress_metrics(metrics, plan)

    disparities = disparities.assign(p_holm=np.nan, p_bh=np.nan)
    if len(disparities):
        disparities = suppress_disparities(disparities, metrics)
        disparities = adjust_pvalues(disparities, config.multiplicity.family)
    disparities = disparities.loc[:, list(DISPARITY_COLUMNS)]

    manifest = build_manifest(config=full_config.to_dict(), inputs=tail.inputs,
                              seed=config.seed, thresholds=thresholds, extra=tail.provenance)
    steps.next()
    extras = {
        "cohort": tail.cohort_rows(plan),
        "reference_groups": cohort.references(),
        "tasks": [t.name for t in config.tasks],
        "attributes": [g.attribute for g in cohort.groupings],
        **tail.extras(metrics, plan),
        "suppression": {"min_cell_size": plan.k, **plan.counts()},
    }
    steps.done()
    return AuditResult(metrics=metrics, disparities=disparities, manifest=manifest,
                       extras=extras, config=full_config)
