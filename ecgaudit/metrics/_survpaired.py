"""Paired comparison of two survival models scored on the same patients, per group.

Both models' metrics come from the *same* bootstrap replicates: the two audits share the
strata (finest intersection of the groupings), the patient clusters and the seed, so the
counter-based sampler of :mod:`ecgaudit.metrics._bootsample` gives replicate ``b`` the same
row weights for both models, and ``candidate_b - baseline_b`` is the paired replicate of
the change. The change interval is the percentile interval of those differences (their
positive correlation is kept, so it is narrower than an unpaired one when the models agree
on most patients). Without replicates (``n_boot = 0``) Harrell's C gets a paired Wald
interval from the difference of the two infinitesimal-jackknife influences (summed within
patients first); the other metrics get no interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import ndtri

from ecgaudit.metrics import _kernels
from ecgaudit.metrics._bootci import degenerate_share, percentile_limits
from ecgaudit.metrics._survaudit import (
    REASON_DEGENERATE,
    SurvCell,
    SurvTask,
    _bootstrap,
    _cells,
    _Grouping,
    _status,
)
from ecgaudit.metrics._survival import harrell_influence, metric_keys

__all__ = ["PAIRED_SURVIVAL_METRICS", "paired_survival"]

#: Metrics compared (observed risk is the outcome, the same for both models).
PAIRED_SURVIVAL_METRICS = ("harrell_c", "uno_c", "td_auroc", "brier", "ibs", "oe_ratio",
                           "cal_ici", "predicted_risk", "sensitivity", "specificity", "ppv")
METHOD_BOOT = "paired bootstrap percentile (B={b}{cluster})"
METHOD_IJ = "paired ij-wald"
NAN = float("nan")


def _paired_ij(cb: SurvCell, cc: SurvCell, j: int, patient: np.ndarray | None,
               level: float) -> tuple[float, float, str]:
    """Wald limits of the change in Harrell's C from the paired IJ influences."""
    _, ib = harrell_influence(cb.g)
    _, ic = harrell_influence(cc.g)
    d = ic - ib
    if patient is not None and d.size:
        _, inv = np.unique(patient[cb.idx], return_inverse=True)
        d = np.bincount(inv, weights=d)
    var = float(np.sum(d**2))
    if not var > 0:
        return NAN, NAN, "none"
    z = float(ndtri(0.5 + level / 2.0))
    change = float(cc.est[j] - cb.est[j])
    return change - z * math.sqrt(var), change + z * math.sqrt(var), METHOD_IJ


def _boot_change(cb: SurvCell, cc: SurvCell, j: int, level: float, max_degenerate: float,
                 method: str) -> tuple[float, float, str, str]:
    diff = (np.concatenate(cc.reps)[:, j] - np.concatenate(cb.reps)[:, j])[:, None]
    share = float(degenerate_share(diff)[0])
    if share > max_degenerate:
        return NAN, NAN, "none", REASON_DEGENERATE.format(share=share)
    lo, hi = percentile_limits(diff, level)
    return float(lo[0]), float(hi[0]), method, ""


def _pair_rows(cb: SurvCell, cc: SurvCell, tb: SurvTask, tc: SurvTask, grp: _Grouping,
               patient: np.ndarray | None, opts: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for j, (metric, h) in enumerate(metric_keys(tb.horizons)):
        if metric not in PAIRED_SURVIVAL_METRICS:
            continue
        vb, vc = float(cb.est[j]), float(cc.est[j])
        sb, rb = _status(cb, tb, metric, h, vb, opts["min_events"])
        sc, rc = _status(cc, tc, metric, h, vc, opts["min_events"])
        row: dict[str, Any] = {
            "task": tb.name, "attribute": grp.attribute, "group": grp.groups[cb.group],
            "metric": metric, "horizon": h, "baseline": NAN, "candidate": NAN, "change": NAN,
            "change_ci_low": NAN, "change_ci_high": NAN, "ci_method": "none",
            "n": int(cb.idx.size), "status": "ok", "reason": ""}
        if "insufficient" in (sb, sc):
            who, why = ("baseline", rb) if sb == "insufficient" else ("candidate", rc)
            row.update(status="insufficient", reason=f"{who}: {why}")
            rows.append(row)
            continue
        row.update(baseline=vb, candidate=vc, change=vc - vb)
        why = ""
        if cb.reps:
            lo, hi, method, why = _boot_change(cb, cc, j, opts["level"],
                                               opts["max_degenerate"], opts["method"])
        elif metric == "harrell_c":
            lo, hi, method = _paired_ij(cb, cc, j, patient, opts["level"])
        else:
            lo, hi, method = NAN, NAN, "none"
        row.update(change_ci_low=lo, change_ci_high=hi, ci_method=method)
        if "unstable" in (sb, sc):
            row.update(status="unstable")
        row["reason"] = "; ".join(x for x in (rb or rc, why) if x)
        rows.append(row)
    return rows


def paired_survival(baseline: Sequence[SurvTask], candidate: Sequence[SurvTask],
                    groupings: Sequence[_Grouping], patient: np.ndarray | None, *,
                    level: float, min_events: int, n_boot: int, seed: int,
                    max_degenerate: float, compiled: bool | None = None
                    ) -> list[dict[str, Any]]:
    """Candidate-minus-baseline change of every survival metric, task, grouping and group.

    Parameters
    ----------
    baseline, candidate : sequence of SurvTask
        The same tasks (same follow-up times and events, row for row), scored by the two
        models.
    groupings : sequence
        Objects with ``attribute``, ``codes``, ``groups`` and ``reference``.
    patient : ndarray of int, optional
        Patient code per row (clustered replicates and IJ variances).
    level : float
        Confidence level.
    min_events : int
        Fewer events (by the horizon) make a row ``unstable``.
    n_boot : int
        Bootstrap replicates shared by both models (0: Harrell's C by paired IJ only).
    seed : int
        Bootstrap seed.
    max_degenerate : float
        Largest share of undefined replicate differences that still gives an interval.
    compiled : bool, optional
        Use the numba kernel (default: when numba is installed).

    Returns
    -------
    list of dict
        Keys ``task, attribute, group, metric, horizon, baseline, candidate, change,
        change_ci_low, change_ci_high, ci_method, n, status, reason``.
    """
    for b, c in zip(baseline, candidate):
        if not (np.array_equal(b.time, c.time) and np.array_equal(b.event, c.event)):
            raise ValueError(f"task '{b.name}': the two models' follow-up differs")
    use = _kernels.HAVE_NUMBA if compiled is None else bool(compiled)
    cells_b = _cells(baseline, groupings, patient, use)
    cells_c = _cells(candidate, groupings, patient, use)
    if n_boot > 0:  # same strata, clusters and seed: the same replicates for both models
        _bootstrap(cells_b, baseline, groupings, patient, n_boot, seed, use)
        _bootstrap(cells_c, candidate, groupings, patient, n_boot, seed, use)
    cluster = ", clustered by patient" if patient is not None else ""
    opts = {"level": level, "min_events": min_events, "max_degenerate": max_degenerate,
            "method": METHOD_BOOT.format(b=n_boot, cluster=cluster)}
    rows: list[dict[str, Any]] = []
    for cb, cc in zip(cells_b, cells_c):
        rows += _pair_rows(cb, cc, baseline[cb.task], candidate[cc.task],
                           groupings[cb.grouping], patient, opts)
    return rows
