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

from ecgaudit.metrics._bootci import degenerate_share, percentile_limits
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._bootstrap import DEGENERATE_REASON, Grouping
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._crossauc import _pairs, cross_auc
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
        Groupings to report (``overall`` is skipped: it has no background).
    n_boot, seed, level, patient, max_degenerate
        As for :func:`~ecgaudit.metrics._bootstrap.bootstrap_intervals`.
    strata_groupings : sequence of Grouping, optional
        Groupings that define the resampling strata (default ``groupings``); pass the same
        list as to ``bootstrap_intervals`` to get the very same replicates.

    Returns
    -------
    pandas.DataFrame
        ``task, attribute, group, metric, estimate, ci_low, ci_high, ci_method,
        degenerate_share, reason``.
    """
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    specs = []
    for grouping in groupings:
        if len(grouping.groups) < 2:
            continue
        for g, name in enumerate(grouping.groups):
            ref = None if grouping.reference in (None, g) else grouping.reference
            for metric, pm, nm in _pairs(y, grouping.codes, g, ref):
                specs.append((grouping.attribute, name, metric, pm, nm))
    reps = np.empty((n_boot, len(specs)))
    if n_boot:
        strata = finest_strata([g.codes for g in (strata_groupings or groupings)], y.size)
        sampler = Sampler(strata.codes, patient, seed)
        chunk = max(1, min(n_boot, (1 << 22) // max(y.size, 1)))
        for start in range(0, n_boot, chunk):
            block = range(start, min(n_boot, start + chunk))
            w = sampler.draw(block)
            for j, (_, _, _, pm, nm) in enumerate(specs):
                reps[block.start:block.stop, j] = cross_auc(p[pm], p[nm], w[:, pm], w[:, nm])
    share = degenerate_share(reps)
    lo, hi = percentile_limits(reps, level)
    rows = []
    for j, (attribute, name, metric, pm, nm) in enumerate(specs):
        low, high, reason = float(lo[j]), float(hi[j]), ""
        if share[j] > max_degenerate:
            reason = DEGENERATE_REASON.format(
                share=float(share[j]), n_boot=n_boot,
                needs="positives on one side and negatives on the other", where="",
                limit=max_degenerate)
            low = high = float("nan")
        rows.append((task, attribute, name, metric, cross_auc(p[pm], p[nm]), low, high,
                     "bootstrap-percentile", float(share[j]), reason))
    cols = ["task", "attribute", "group", "metric", "estimate", "ci_low", "ci_high",
            "ci_method", "degenerate_share", "reason"]
    return pd.DataFrame.from_records(rows, columns=cols)
