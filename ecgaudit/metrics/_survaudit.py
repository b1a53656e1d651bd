"""Survival metrics of every task x grouping x group, with intervals, as tidy rows.

Closed-form intervals: Harrell's C gets a Wald interval from its infinitesimal-jackknife
variance (influences summed within patients when rows are clustered); differences of C
between disjoint groups get a Wald interval and z-test. With ``n_boot > 0`` every metric
and every difference gets a percentile interval from one set of stratified (by the finest
intersection of the groupings), optionally patient-clustered replicates drawn by the
project's counter-based sampler (:class:`ecgaudit.metrics._bootsample.Sampler`), so a seed
means the same draws as in the binary audit; differences get the bootstrap p-value, except
Harrell's C, which keeps its continuous z-test; observed and predicted risk get no test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy.special import ndtr, ndtri

from ecgaudit.metrics import _kernels
from ecgaudit.metrics._bootci import degenerate_share
from ecgaudit.metrics._bootsample import Sampler
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._survbca import BCA_UNDEFINED_REASON, diff_p_value, limits
from ecgaudit.metrics._survival import (
    CAL_CLIP,
    SurvGroup,
    harrell_influence,
    metric_keys,
    survival_values,
)
from ecgaudit.metrics._survkernel import METRIC_CODES, logits, replicate_values
from ecgaudit.metrics._survtable import survival_metric
from ecgaudit.registry import REGISTRY

__all__ = ["SurvCell", "SurvTask", "survival_audit"]

NAN = float("nan")
REASON_FOLLOW_UP = ("follow-up in this group ends at {t:g}, not beyond the horizon {h:g}: "
                    "the metric is not estimable here")
REASON_NO_PROB = "needs a predicted probability of the event by the horizon (score is a risk)"
REASON_NO_EVENTS = "no events by the horizon {h:g} in this group"
REASON_NO_PAIRS = "no comparable pairs (no event followed by a longer follow-up)"
REASON_UNDEFINED = "undefined for this group (no events or no patients event-free past {h:g})"
REASON_ONE_HORIZON = "needs two or more horizons"
REASON_UNSTABLE = "fewer than {k} events{by}; interpret with caution"
#: Outcome descriptions, not model performance: differences get intervals but no test (they
#: would only enlarge the multiplicity family).
DESCRIPTIVE = frozenset(s.name for s in REGISTRY.select("survival") if s.disparity_test == "none")
REASON_DEGENERATE = "bootstrap CI unavailable: {share:.1%} of replicates were degenerate"


class _Grouping(Protocol):
    attribute: str
    codes: np.ndarray
    groups: tuple[str, ...]
    reference: int | None


@dataclass(frozen=True)
class SurvTask:
    """One survival task's arrays (all rows)."""

    name: str
    time: np.ndarray
    event: np.ndarray
    score: np.ndarray
    prob: np.ndarray | None
    threshold: float
    horizons: tuple[float, ...]


@dataclass
class SurvCell:
    """One task x grouping x group: its rows, point estimates and replicates."""

    task: int
    grouping: int
    group: int
    idx: np.ndarray
    g: SurvGroup
    est: np.ndarray
    c_var: float
    reps: list[np.ndarray] = field(default_factory=list)
    jack: np.ndarray | None = None  # BCa: jackknife values (J, metrics)


def _cells(tasks: Sequence[SurvTask], groupings: Sequence[_Grouping],
           patient: np.ndarray | None, compiled: bool) -> list[SurvCell]:
    cells = []
    for ti, t in enumerate(tasks):
        for gi, grp in enumerate(groupings):
            codes = np.asarray(grp.codes)
            for k in range(len(grp.groups)):
                idx = np.flatnonzero(codes == k)
                g = SurvGroup.build(t.time[idx], t.event[idx], t.score[idx],
                                    None if t.prob is None else t.prob[idx])
                if compiled and idx.size:  # same values as survival_values (tested)
                    est = compiled_replicates(g, np.arange(idx.size),
                                              np.ones((1, idx.size), np.int32), t.horizons,
                                              t.threshold)[0]
                else:
                    est = survival_values(g, None, t.horizons, t.threshold)
                _, infl = harrell_influence(g)
                if patient is not None and idx.size:
                    _, inv = np.unique(patient[idx], return_inverse=True)
                    infl = np.bincount(inv, weights=infl)
                var = float(np.sum(infl**2)) if idx.size else NAN
                cells.append(SurvCell(ti, gi, k, idx, g, est, var))
    return cells


def _bootstrap(cells: list[SurvCell], tasks: Sequence[SurvTask],
               groupings: Sequence[_Grouping], patient: np.ndarray | None, n_boot: int,
               seed: int, compiled: bool, block: int = 64,
               jackknife_blocks: int | None = None) -> None:
    n_rows = tasks[0].time.size
    strata = finest_strata([np.asarray(g.codes) for g in groupings], n_rows)
    sampler = Sampler(strata.codes, patient, seed)
    preps = ([kernel_inputs(c.g, c.idx, tasks[c.task].horizons) for c in cells]
             if compiled else [None] * len(cells))
    for b0 in range(0, n_boot, block):
        weights = sampler.draw(range(b0, min(n_boot, b0 + block)))
        for c, prep in zip(cells, preps):
            c.reps.append(_weighted(c, tasks[c.task], weights, compiled, prep))
    if jackknife_blocks:  # BCa's acceleration: delete-a-block jackknife of the units
        weights = sampler.jackknife(jackknife_blocks)
        for c, prep in zip(cells, preps):
            c.jack = _weighted(c, tasks[c.task], weights, compiled, prep)


def _weighted(c: SurvCell, t: SurvTask, weights: np.ndarray, compiled: bool,
              prep: tuple | None) -> np.ndarray:
    """Metric values of one group under each row of ``weights`` (one per replicate)."""
    if compiled:
        return compiled_replicates(c.g, c.idx, weights, t.horizons, t.threshold, prep)
    wf = weights.astype(np.float64)
    return np.array([survival_values(c.g, w[c.idx], t.horizons, t.threshold) for w in wf])


def kernel_inputs(g: SurvGroup, idx: np.ndarray, horizons: Sequence[float]) -> tuple:
    """Build the replicate-independent kernel arguments of one group (once per audit)."""
    hs = sorted(float(h) for h in horizons)
    keys = metric_keys(hs)
    col = np.zeros((len(METRIC_CODES), len(hs)), dtype=np.int64)
    for j, (m, h) in enumerate(keys):
        per_h = m not in ("harrell_c", "uno_c", "ibs")  # one value each, in slot 0
        col[METRIC_CODES.index(m), hs.index(h) if per_h and h is not None else 0] = j
    r = g.rows
    prob = np.zeros(g.n) if g.prob is None else g.prob
    porder = np.argsort(np.clip(prob, CAL_CLIP, 1.0 - CAL_CLIP), kind="stable")
    ustart = np.append(r.start, r.time.size).astype(np.int64)
    xsort, pcsort = logits(prob, porder)
    return (np.asarray(idx[r.index], np.int64), r.time, r.event, g.rank, g.n_ranks, prob,
            g.prob is not None, r.uniq, ustart, np.array(hs), np.argsort(porder), xsort,
            pcsort, col, len(keys))


def compiled_replicates(g: SurvGroup, idx: np.ndarray, weights: np.ndarray,
                        horizons: Sequence[float], threshold: float,
                        prep: tuple | None = None) -> np.ndarray:
    """Values of every replicate in ``weights`` (rows x all rows) by the compiled kernel.

    Same numbers as :func:`survival_values` per replicate (to rounding), in the order of
    :func:`metric_keys`. ``prep`` is :func:`kernel_inputs` of the group, if already built.
    """
    p = kernel_inputs(g, idx, horizons) if prep is None else prep
    out = np.empty((weights.shape[0], p[-1]))
    replicate_values(weights, *p[:10], float(threshold), *p[10:14], out)
    return out


def _status(c: SurvCell, t: SurvTask, metric: str, h: float | None, v: float,
            min_events: int) -> tuple[str, str]:
    r = c.g.rows
    tmax = float(r.time.max()) if r.time.size else -math.inf
    ev = r.event == 1
    if not math.isfinite(v):
        if h is not None and h >= tmax:
            return "insufficient", REASON_FOLLOW_UP.format(t=tmax, h=h)
        if survival_metric(metric).needs == "probability" and t.prob is None:
            return "insufficient", REASON_NO_PROB
        if metric == "ibs" and len(t.horizons) < 2:
            return "insufficient", REASON_ONE_HORIZON
        if metric == "harrell_c":
            return "insufficient", REASON_NO_PAIRS
        if h is not None and not np.any(ev & (r.time <= h)):
            return "insufficient", REASON_NO_EVENTS.format(h=h)
        return "insufficient", REASON_UNDEFINED.format(h=h if h is not None else tmax)
    n_ev = int(np.sum(ev & (r.time <= h))) if h is not None else int(ev.sum())
    if n_ev < min_events:
        by = f" by the horizon {h:g}" if h is not None else ""
        return "unstable", REASON_UNSTABLE.format(k=min_events, by=by)
    return "ok", ""


def _interval(c: SurvCell, j: int, metric: str, level: float, max_degenerate: float
              ) -> tuple[float, float, str, str]:
    v = c.est[j]
    if c.reps:
        reps = np.concatenate(c.reps)[:, j : j + 1]
        share = float(degenerate_share(reps)[0])
        if share > max_degenerate:
            return NAN, NAN, "none", REASON_DEGENERATE.format(share=share)
        jack = None if c.jack is None else c.jack[:, j : j + 1]
        lo, hi, bad = limits(reps, c.est[j : j + 1], jack, level)
        method = "bootstrap-percentile" if jack is None else "bootstrap-bca"
        return float(lo[0]), float(hi[0]), method, BCA_UNDEFINED_REASON if bad[0] else ""
    if metric == "harrell_c" and math.isfinite(c.c_var) and c.c_var > 0:
        z = float(ndtri(0.5 + level / 2.0))
        se = math.sqrt(c.c_var)
        return max(0.0, v - z * se), min(1.0, v + z * se), "ij-wald", ""
    return NAN, NAN, "none", ""


def _metric_rows(cells: list[SurvCell], tasks: Sequence[SurvTask],
                 groupings: Sequence[_Grouping], level: float, min_events: int,
                 max_degenerate: float) -> tuple[list[dict[str, Any]], dict]:
    rows, statuses = [], {}
    for c in cells:
        t, grp = tasks[c.task], groupings[c.grouping]
        r = c.g.rows
        for j, (metric, h) in enumerate(metric_keys(t.horizons)):
            v = float(c.est[j])
            status, reason = _status(c, t, metric, h, v, min_events)
            lo = hi = NAN
            method = "none"
            if status != "insufficient":
                lo, hi, method, why = _interval(c, j, metric, level, max_degenerate)
                reason = "; ".join(x for x in (reason, why) if x)
            else:
                v = NAN
            statuses[(id(c), j)] = (status, reason)
            rows.append({"task": t.name, "attribute": grp.attribute,
                         "group": grp.groups[c.group], "metric": metric, "horizon": h,
                         "estimate": v, "ci_low": lo, "ci_high": hi, "ci_method": method,
                         "n": int(r.time.size), "n_pos": int(np.sum(r.event == 1)),
                         "status": status, "reason": reason})
    return rows, statuses


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b != 0 else NAN


def _closed_diff(c: SurvCell, ref: SurvCell, j: int, level: float) -> dict[str, Any]:
    a, b = float(c.est[j]), float(ref.est[j])
    if not (c.c_var > 0 and ref.c_var > 0):
        return {}
    z = float(ndtri(0.5 + level / 2.0))
    se = math.sqrt(c.c_var + ref.c_var)
    d = a - b
    out: dict[str, Any] = {"difference_ci_low": d - z * se, "difference_ci_high": d + z * se,
                           "ci_method": "ij-wald", "test": "wald-z",
                           "p_value": float(2.0 * ndtr(-abs(d) / se))}
    if a > 0 and b > 0:
        sr = math.sqrt(c.c_var / a**2 + ref.c_var / b**2)
        out.update(ratio_ci_low=a / b * math.exp(-z * sr), ratio_ci_high=a / b * math.exp(z * sr))
    return out


def _boot_diff(c: SurvCell, ref: SurvCell, j: int, level: float, max_degenerate: float
               ) -> dict[str, Any]:
    g = np.concatenate(c.reps)[:, j]
    r = np.concatenate(ref.reps)[:, j]
    diff = (g - r)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(r != 0, g / r, np.nan)[:, None]
    share = float(degenerate_share(diff)[0])
    if share > max_degenerate:
        return {"reason_extra": REASON_DEGENERATE.format(share=share)}
    a, b = c.est[j], ref.est[j]
    jd = jr = None
    if c.jack is not None and ref.jack is not None:
        ja, jb = c.jack[:, j], ref.jack[:, j]
        jd = (ja - jb)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            jr = np.where(jb != 0, ja / jb, np.nan)[:, None]
    e_diff, e_ratio = np.array([a - b]), np.array([_ratio(a, b)])
    lo, hi, bad = limits(diff, e_diff, jd, level)
    rlo, rhi, _ = limits(ratio, e_ratio, jr, level)
    return {"difference_ci_low": float(lo[0]), "difference_ci_high": float(hi[0]),
            "ratio_ci_low": float(rlo[0]), "ratio_ci_high": float(rhi[0]),
            "ci_method": "bootstrap-percentile" if jd is None else "bootstrap-bca",
            "test": "bootstrap", "p_value": float(diff_p_value(diff, e_diff, jd, level)[0]),
            **({"reason_extra": BCA_UNDEFINED_REASON} if bad[0] else {})}


def _disparity_rows(cells: list[SurvCell], tasks: Sequence[SurvTask],
                    groupings: Sequence[_Grouping], statuses: dict, level: float,
                    max_degenerate: float) -> list[dict[str, Any]]:
    by_key = {(c.task, c.grouping, c.group): c for c in cells}
    rows = []
    for c in cells:
        grp = groupings[c.grouping]
        if grp.reference is None or c.group == grp.reference:
            continue
        ref = by_key[(c.task, c.grouping, grp.reference)]
        t = tasks[c.task]
        for j, (metric, h) in enumerate(metric_keys(t.horizons)):
            row: dict[str, Any] = {
                "task": t.name, "attribute": grp.attribute, "group": grp.groups[c.group],
                "reference": grp.groups[grp.reference], "metric": metric, "horizon": h,
                "difference": NAN, "difference_ci_low": NAN, "difference_ci_high": NAN,
                "ratio": NAN, "ratio_ci_low": NAN, "ratio_ci_high": NAN, "ci_method": "none",
                "test": "none", "p_value": NAN, "status": "ok", "reason": ""}
            (gs, gr), (rs, rr) = statuses[(id(c), j)], statuses[(id(ref), j)]
            if "insufficient" in (gs, rs):
                who, why = ("group", gr) if gs == "insufficient" else ("reference", rr)
                row.update(status="insufficient", reason=f"{who}: {why}")
                rows.append(row)
                continue
            a, b = float(c.est[j]), float(ref.est[j])
            row.update(difference=a - b, ratio=_ratio(a, b))
            closed = _closed_diff(c, ref, j, level) if metric == "harrell_c" else {}
            extra = _boot_diff(c, ref, j, level, max_degenerate) if c.reps else closed
            if c.reps and "p_value" in closed:  # the continuous z-test, as in binary audits
                extra.update(test=closed["test"], p_value=closed["p_value"])
            if metric in DESCRIPTIVE:
                extra.update(test="none", p_value=NAN)
            why = extra.pop("reason_extra", "")
            row.update(extra)
            if "unstable" in (gs, rs):
                row.update(status="unstable", reason=gr or rr)
            row["reason"] = "; ".join(x for x in (row["reason"], why) if x)
            rows.append(row)
    return rows


def survival_audit(tasks: Sequence[SurvTask], groupings: Sequence[_Grouping],
                   patient: np.ndarray | None, *, level: float, min_events: int,
                   n_boot: int, seed: int, max_degenerate: float,
                   compiled: bool | None = None, method: str = "percentile",
                   jackknife_blocks: int = 100
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[SurvCell]]:
    """Metric and disparity rows of every survival task, grouping and group.

    Parameters
    ----------
    tasks : sequence of SurvTask
        The survival tasks.
    groupings : sequence
        Objects with ``attribute``, ``codes``, ``groups`` and ``reference``.
    patient : ndarray of int, optional
        Patient code per row (clustered intervals and resampling).
    level : float
        Confidence level.
    min_events : int
        Fewer events (by the horizon) make a metric ``unstable``.
    n_boot : int
        Bootstrap replicates (0: closed-form intervals only).
    seed : int
        Bootstrap seed.
    max_degenerate : float
        Largest share of undefined replicates that still gives an interval.
    compiled : bool, optional
        Use the numba kernel (default: when numba is installed); both give the same values.
    method : {"percentile", "bca"}
        Bootstrap interval method (:mod:`ecgaudit.metrics._survbca` for BCa).
    jackknife_blocks : int
        BCa: blocks of the delete-a-block jackknife of the resampling units.

    Returns
    -------
    metric_rows, disparity_rows : list of dict
        Rows with the ``horizon`` key (``None`` where the metric has none).
    cells : list of SurvCell
        The per-group computations (for curves in the report extras).
    """
    use = _kernels.HAVE_NUMBA if compiled is None else bool(compiled)
    cells = _cells(tasks, groupings, patient, use)
    if n_boot > 0:
        _bootstrap(cells, tasks, groupings, patient, n_boot, seed, use,
                   jackknife_blocks=jackknife_blocks if method == "bca" else None)
    metric_rows, statuses = _metric_rows(cells, tasks, groupings, level, min_events,
                                         max_degenerate)
    disp = _disparity_rows(cells, tasks, groupings, statuses, level, max_degenerate)
    return metric_rows, disp, cells
