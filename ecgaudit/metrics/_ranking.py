"""Ranking-fairness metrics: BPSN / BNSP subgroup AUCs and cross-group AUC (xAUC).

All are cross-AUCs ``P(S+ > S-) + 1/2 P(S+ = S-)`` between a set of positives and a set of
negatives (Mann-Whitney with ties counted 1/2):

* ``bpsn_auc`` (Borkan et al. 2019): background positives vs subgroup negatives. Low when
  the group's negatives score high (the model shifts the group's scores up).
* ``bnsp_auc``: subgroup positives vs background negatives. Low when the group's
  positives score low (scores shifted down).
* ``xauc(a, b)`` (Kallus & Zhou 2019): positives of group ``a`` vs negatives of group
  ``b``; ``xauc(g, ref)`` and ``xauc(ref, g)`` compare a group with its reference.

Together with the within-group AUROC they separate "the model ranks worse inside this
group" (low AUROC) from "the model shifts this group's scores" (BPSN and BNSP apart).

:func:`ranking_intervals` gives bootstrap CIs from the same stratified (optionally
patient-clustered) replicates as :func:`ecgaudit.metrics._bootstrap.bootstrap_intervals`
with the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ecgaudit.metrics._bootstrap import Grouping, TaskArrays, bootstrap_intervals
from ecgaudit.metrics._crossauc import cross_auc
from ecgaudit.schema import RANKING_METRICS

__all__ = ["RANKING_METRICS", "bnsp_auc", "bpsn_auc", "cross_auc", "ranking_intervals", "xauc"]



def bpsn_auc(y: np.ndarray, p: np.ndarray, in_group: np.ndarray) -> float:
    """Background-positive, subgroup-negative AUC of one group.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels of the whole cohort.
    p : ndarray of float
        Scores.
    in_group : ndarray of bool
        Membership of the subgroup.

    Returns
    -------
    float
        ``nan`` if the background has no positives or the group no negatives.
    """
    y, p, g = np.asarray(y), np.asarray(p, dtype=np.float64), np.asarray(in_group, dtype=bool)
    return float(cross_auc(p[~g & (y == 1)], p[g & (y == 0)]))


def bnsp_auc(y: np.ndarray, p: np.ndarray, in_group: np.ndarray) -> float:
    """Background-negative, subgroup-positive AUC of one group (see :func:`bpsn_auc`)."""
    y, p, g = np.asarray(y), np.asarray(p, dtype=np.float64), np.asarray(in_group, dtype=bool)
    return float(cross_auc(p[g & (y == 1)], p[~g & (y == 0)]))


def xauc(y: np.ndarray, p: np.ndarray, group_a: np.ndarray, group_b: np.ndarray) -> float:
    """Cross-group AUC: positives of ``group_a`` ranked above negatives of ``group_b``.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels.
    p : ndarray of float
        Scores.
    group_a, group_b : ndarray of bool
        Memberships.

    Returns
    -------
    float
        ``nan`` if ``group_a`` has no positives or ``group_b`` no negatives.
    """
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    a, b = np.asarray(group_a, dtype=bool), np.asarray(group_b, dtype=bool)
    return float(cross_auc(p[a & (y == 1)], p[b & (y == 0)]))


def ranking_intervals(
    task: str, y: np.ndarray, p: np.ndarray, groupings: Sequence[Grouping], *,
    n_boot: int, seed: int, level: float = 0.95, patient: np.ndarray | None = None,
    max_degenerate: float = 0.05, strata_groupings: Sequence[Grouping] | None = None,
) -> pd.DataFrame:
    """BPSN, BNSP and xAUC (vs the reference) per group with percentile bootstrap CIs.

    Parameters
    ----------
    task : str
        Task name for the ``task`` column.
    y, p : ndarray
        Labels and scores.
    groupings : sequence of Grouping
        Groupings to report: those with a reference group and at least two groups.
    n_boot, seed, level, patient, max_degenerate
        As for :func:`~ecgaudit.metrics._bootstrap.bootstrap_intervals`.
    strata_groupings : sequence of Grouping, optional
        Groupings that define the resampling strata (default ``groupings``); pass the same
        list as to ``bootstrap_intervals`` to get the very same replicates.

    Returns
    -------
    pandas.DataFrame
        ``task, attribute, group, metric, estimate, ci_low, ci_high, ci_method,
        degenerate_share, reason``: the ``ranking`` table of
        :func:`~ecgaudit.metrics._bootstrap.bootstrap_intervals` (which computes these
        from its replicates) restricted to ``groupings``.
    """
    strata = list(strata_groupings or groupings)
    known = {g.attribute for g in strata}
    evaluated = strata + [g for g in groupings if g.attribute not in known]
    task_arrays = [TaskArrays(task, np.asarray(y), np.asarray(p, dtype=np.float64), 0.5)]
    res = bootstrap_intervals(task_arrays, evaluated, n_boot=n_boot, seed=seed, level=level,
                              patient=patient, max_degenerate=max_degenerate,
                              metrics=("auroc",))
    wanted = {g.attribute for g in groupings}
    table = res.ranking[res.ranking.attribute.isin(wanted)]
    return table.reset_index(drop=True)
