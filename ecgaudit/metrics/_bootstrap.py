"""Stratified (optionally patient-clustered) bootstrap intervals for every metric and disparity.

How a replicate is drawn
------------------------
Rows are partitioned into *strata*: the finest cells, i.e. the intersection of the codes of
every grouping (``race & sex & age`` when those are the attributes). A resampling *unit* is
a row, or with ``patient`` given, a patient (all its ECGs; a patient belongs to the stratum
of its first row). Replicate ``b`` draws, inside every stratum of ``m`` units, ``m`` units
uniformly with replacement (``floor(u * m)`` with the counter-based uniforms ``u(seed, b, j)``
of :mod:`ecgaudit.metrics._hashrng`), so every group keeps
its size (exactly without ``patient``; its number of patients with it) and no replicate ever
loses a group. A row's weight is how often its unit was drawn.

One weight vector serves every task and every grouping, so the intervals of a group and of
its reference (and of different tasks) come from the same draws: disparity replicates are
paired differences/ratios. Replicate ``b`` does not depend on how replicates are batched.

Degenerate replicates
---------------------
A replicate in which a metric is undefined for a group (e.g. the group drew no positives,
for AUROC or sensitivity) is *degenerate* for that group and metric. Their share is
reported; above ``max_degenerate`` the interval is withheld (``nan``) with the reason;
otherwise limits come from the non-degenerate replicates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecgaudit.errors import InputError
from ecgaudit.metrics._bootci import (
    bca_limits,
    degenerate_share,
    interval_p_value,
    jackknife_acceleration,
    percentile_limits,
)
from ecgaudit.metrics._bootsample import Sampler, replicate_weights
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.metrics._evaluate import Evaluator
from ecgaudit.metrics._fastboot import EXTENDED, EXTENDED_INDEX
from ecgaudit.registry import REGISTRY
from ecgaudit.schema import METRICS, RANKING_METRICS

__all__ = [
    "BOOT_DISPARITY_COLUMNS",
    "BOOT_METRIC_COLUMNS",
    "BOOT_RANKING_COLUMNS",
    "BootstrapResult",
    "Grouping",
    "TaskArrays",
    "bootstrap_intervals",
    "intervals_from",
    "point_estimates",
    "replicate_weights",
]

BOOT_METRIC_COLUMNS = (
    "task", "attribute", "group", "metric", "ci_low", "ci_high", "ci_method",
    "degenerate_share", "reason",
)
BOOT_RANKING_COLUMNS = (
    "task", "attribute", "group", "metric", "estimate", "ci_low", "ci_high", "ci_method",
    "degenerate_share", "reason",
)
BOOT_DISPARITY_COLUMNS = (
    "task", "attribute", "group", "reference", "metric", "difference_ci_low",
    "difference_ci_high", "ratio_ci_low", "ratio_ci_high", "ci_method", "p_value", "reason",
)

#: What each metric needs in a replicate to be defined.
NEEDS: dict[str, str] = {s.name: s.needs_text for s in REGISTRY.select("binary")}
DEGENERATE_REASON = (
    "bootstrap CI unavailable: {share:.1%} of {n_boot} replicates were degenerate (the metric "
    "needs {needs}{where}), above the limit of {limit:.1%} (bootstrap_max_degenerate); "
    "collect more data for this group or rely on the closed-form interval"
)
RATIO_ZERO_REASON = "; ratio CI unavailable: the reference value is 0 in {share:.1%} of replicates"
BCA_UNDEFINED_REASON = (
    "BCa interval undefined: every replicate lies on one side of the point estimate "
    "(use bootstrap_method: percentile)"
)
#: Inverted bootstrap p-values below ``TAIL_REPLICATES / (B + 1)`` (the replicates cannot
#: resolve them) come from the normal tail with the bootstrap standard error.
TAIL_REPLICATES = 20
COLLAPSED_REASON = (
    "bootstrap replicates collapsed: the {what} interval has zero width (every replicate "
    "inside it equals {value:.4g}), which carries no information"
)
BAD_METHOD = "bootstrap method must be 'percentile' or 'bca', got {method!r}"
BAD_LENGTH = "{what} has {got} rows but the tasks have {n}; every array must have one entry per row"


@dataclass(frozen=True)
class TaskArrays:
    """One task: labels, scores and the frozen operating threshold (``flag = p >= t``)."""

    name: str
    y: np.ndarray
    p: np.ndarray
    threshold: float


@dataclass(frozen=True)
class Grouping:
    """One attribute (or intersection): a group index per row, group names, reference."""

    attribute: str
    codes: np.ndarray
    groups: tuple[str, ...]
    reference: int | None


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap limits: one row per task x attribute x group x metric (and disparity).

    ``ranking`` holds the ranking-fairness metrics (BPSN, BNSP, xAUC vs the reference) of
    every group of every grouping with a reference, with estimates, from the same
    replicates.
    """

    metrics: pd.DataFrame
    disparities: pd.DataFrame
    ranking: pd.DataFrame


def _check(tasks: Sequence[TaskArrays], groupings: Sequence[Grouping],
           patient: np.ndarray | None, method: str, n_boot: int) -> int:
    if method not in ("percentile", "bca"):
        raise InputError(BAD_METHOD.format(method=method))
    if n_boot < 1:
        raise InputError(f"the number of bootstrap replicates must be >= 1, got {n_boot}")
    if not tasks:
        raise InputError("bootstrap_intervals needs at least one task")
    if not groupings:
        raise InputError("bootstrap_intervals needs at least one grouping (e.g. overall)")
    n = int(np.asarray(tasks[0].y).size)
    for t in tasks:
        for what, arr in ((f"task '{t.name}' labels", t.y), (f"task '{t.name}' scores", t.p)):
            if np.asarray(arr).size != n:
                raise InputError(BAD_LENGTH.format(what=what, got=np.asarray(arr).size, n=n))
    for g in groupings:
        codes = np.asarray(g.codes)
        if codes.size != n:
            raise InputError(
                BAD_LENGTH.format(what=f"grouping '{g.attribute}'", got=codes.size, n=n))
        if codes.size and (codes.min() < 0 or codes.max() >= len(g.groups)):
            raise InputError(f"grouping '{g.attribute}' has codes outside 0..{len(g.groups) - 1}")
    if patient is not None and np.asarray(patient).size != n:
        raise InputError(BAD_LENGTH.format(what="patient", got=np.asarray(patient).size, n=n))
    return n


def point_estimates(
    tasks: Sequence[TaskArrays], groupings: Sequence[Grouping], *,
    clip: float = 0.0, ece_bins: int = 10, engine: str = "auto",
) -> pd.DataFrame:
    """Every metric of every group from exact cells (the engine at weight 1).

    Parameters
    ----------
    tasks, groupings : sequences
        As for :func:`bootstrap_intervals`.
    clip : float
        Score clip for the recalibration fit.
    ece_bins : int
        Equal-mass ECE bins.
    engine : {"auto", "compiled", "numpy"}
        Engine (see :mod:`ecgaudit.metrics._evaluate`).

    Returns
    -------
    pandas.DataFrame
        Columns ``task, attribute, group, metric, estimate``.
    """
    n = _check(tasks, groupings, None, "percentile", 1)
    strata = finest_strata([g.codes for g in groupings], n)
    ev = Evaluator(tasks, groupings, strata.codes, Sampler(strata.codes, None, 0),
                   engine=engine, bins=None, clip=clip, ece_bins=ece_bins, skip=frozenset())
    rows: dict[str, list] = {k: [] for k in ("task", "attribute", "group", "metric", "estimate")}
    for t, per_task in zip(tasks, ev.estimates()[0]):
        for g, est in zip(groupings, per_task):
            for gi, name in enumerate(g.groups):
                for m, metric in enumerate(METRICS):
                    for k, v in zip(rows, (t.name, g.attribute, name, metric, est[m, gi])):
                        rows[k].append(v)
    return pd.DataFrame(rows)


def _limits(reps: np.ndarray, est: np.ndarray, jack: np.ndarray | None, level: float,
            method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Limits and a 'BCa undefined' mask for replicate array (B, ...)."""
    if method == "percentile" or jack is None:
        lo, hi = percentile_limits(reps, level)
        return lo, hi, np.zeros(lo.shape, dtype=bool)
    lo, hi = bca_limits(reps, est, jackknife_acceleration(jack), level)
    return lo, hi, np.isnan(lo) & np.isfinite(est) & np.any(~np.isnan(reps), axis=0)


def _reason(share: float, n_boot: int, limit: float, metric: str, where: str) -> str:
    return DEGENERATE_REASON.format(share=share, n_boot=n_boot, needs=NEEDS[metric],
                                    where=where, limit=limit)


def bootstrap_intervals(
    tasks: Sequence[TaskArrays],
    groupings: Sequence[Grouping],
    *,
    n_boot: int,
    seed: int,
    level: float = 0.95,
    method: str = "percentile",
    patient: np.ndarray | None = None,
    max_degenerate: float = 0.05,
    clip: float = 0.0,
    ece_bins: int = 10,
    jackknife_blocks: int = 100,
    metrics: Sequence[str] | None = None,
    engine: str = "auto",
    bins: int | None = None,
) -> BootstrapResult:
    """Bootstrap CIs for every metric of every group and every disparity vs the reference.

    Parameters
    ----------
    tasks : sequence of TaskArrays
        Tasks (all of the same length ``n``).
    groupings : sequence of Grouping
        Groupings (``overall``, attributes, intersections); their intersection defines the
        resampling strata.
    n_boot : int
        Number of replicates ``B``.
    seed : int
        Seed; the same seed gives the same intervals.
    level : float
        Confidence level.
    method : {"percentile", "bca"}
        Interval method. BCa's acceleration uses a delete-a-block jackknife over
        ``jackknife_blocks`` random blocks of resampling units.
    patient : ndarray, optional
        Patient id per row: resample patients (all their ECGs) within strata.
    max_degenerate : float
        Largest share of degenerate replicates for which an interval is still reported.
    clip : float
        Score clip before the logit of the calibration fit.
    ece_bins : int
        Equal-mass ECE bins.
    jackknife_blocks : int
        Jackknife blocks for BCa.
    metrics : sequence of str, optional
        Metric ids to report (default: all of :data:`ecgaudit.schema.METRICS`); leaving out
        ``cal_intercept`` and ``cal_slope`` skips the recalibration fits, most of the cost.
    engine : {"auto", "compiled", "numpy"}
        ``"auto"`` uses the compiled kernels when numba is installed (see
        :mod:`ecgaudit.metrics._evaluate`); all engines give the same intervals.
    bins : int, optional
        Binned mode for the replicates (``2**12..2**16`` equal-mass score bins per task, see
        :mod:`ecgaudit.metrics._binned`); point estimates stay exact. ``None``: exact.

    Returns
    -------
    BootstrapResult
        ``metrics`` (:data:`BOOT_METRIC_COLUMNS`) and ``disparities``
        (:data:`BOOT_DISPARITY_COLUMNS`); ``difference = group - reference`` and
        ``ratio = group / reference`` from the same replicates.

    Raises
    ------
    InputError
        On an unknown method, ``n_boot < 1`` or arrays of different lengths.
    """
    n = _check(tasks, groupings, patient, method, n_boot)
    wanted = tuple(METRICS) if metrics is None else tuple(metrics)
    unknown = sorted(set(wanted) - set(METRICS))
    if unknown:
        raise InputError(f"unknown metric ids {unknown}; valid: {list(METRICS)}")
    skip = frozenset(METRICS) - frozenset(wanted)
    strata = finest_strata([g.codes for g in groupings], n)
    sampler = Sampler(strata.codes, patient, seed)
    ev = Evaluator(tasks, groupings, strata.codes, sampler, engine=engine, bins=bins,
                   clip=clip, ece_bins=ece_bins, skip=skip)
    est, _ = ev.estimates()
    return intervals_from(ev, est, tasks, groupings, n_boot=n_boot, level=level, method=method,
                          max_degenerate=max_degenerate, jackknife_blocks=jackknife_blocks)


def intervals_from(ev: Evaluator, est: list[list[np.ndarray]], tasks: Sequence[TaskArrays],
                   groupings: Sequence[Grouping], *, n_boot: int, level: float, method: str,
                   max_degenerate: float, jackknife_blocks: int) -> BootstrapResult:
    """Bootstrap limits from a prepared :class:`Evaluator` and its point estimates ``est``."""
    _check(tasks, groupings, None, method, n_boot)
    skip, sampler = ev.skip, ev.sampler
    reps = [[np.empty((n_boot, len(EXTENDED), len(g.groups))) for g in groupings] for _ in tasks]
    chunk = ev.block_size(n_boot)
    for start in range(0, n_boot, chunk):
        block = range(start, min(n_boot, start + chunk))
        for t, row in enumerate(ev.replicates(block)):
            for gi, r in enumerate(row):
                reps[t][gi][block.start:block.stop] = r
    jack = None
    centre = est
    if method == "bca":
        jack = ev.weighted(sampler.jackknife(jackknife_blocks))
        centre = ev.centres()
    ci_method = f"bootstrap-{method}"
    m_rows: list[tuple] = []
    d_rows: list[tuple] = []
    r_rows: list[tuple] = []
    for t, task in enumerate(tasks):
        for gi, g in enumerate(groupings):
            r, e, c = reps[t][gi], est[t][gi], centre[t][gi]
            jk = None if jack is None else jack[t][gi]
            share = degenerate_share(r)
            lo, hi, bca_bad = _limits(r, c, jk, level, method)
            for gidx, gname in enumerate(g.groups):
                for m, metric in enumerate(METRICS):
                    if metric in skip:
                        continue
                    s = float(share[m, gidx])
                    reason = ""
                    low, high = float(lo[m, gidx]), float(hi[m, gidx])
                    if s > max_degenerate:
                        reason = _reason(s, n_boot, max_degenerate, metric, " in the group")
                        low = high = float("nan")
                    elif bca_bad[m, gidx]:
                        reason = BCA_UNDEFINED_REASON
                    elif low == high:
                        reason = COLLAPSED_REASON.format(what=metric, value=low)
                        low = high = float("nan")
                    m_rows.append((task.name, g.attribute, gname, metric, low, high,
                                   ci_method, s, reason))
            if g.reference is not None:
                d_rows.extend(_disparity_rows(task.name, g, r, c, jk, level, method,
                                              n_boot, max_degenerate, ci_method, skip))
                if len(g.groups) > 1:
                    r_rows.extend(_ranking_rows(task.name, g, e, lo, hi, share, bca_bad,
                                                n_boot, max_degenerate, ci_method))
    metrics = pd.DataFrame.from_records(m_rows, columns=list(BOOT_METRIC_COLUMNS))
    disparities = pd.DataFrame.from_records(d_rows, columns=list(BOOT_DISPARITY_COLUMNS))
    ranking = pd.DataFrame.from_records(r_rows, columns=list(BOOT_RANKING_COLUMNS))
    return BootstrapResult(metrics=metrics, disparities=disparities, ranking=ranking)


def _ranking_rows(task: str, g: Grouping, e: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                  share: np.ndarray, bca_bad: np.ndarray, n_boot: int, limit: float,
                  ci_method: str) -> list[tuple]:
    rows = []
    for gidx, gname in enumerate(g.groups):
        for metric in RANKING_METRICS:
            if metric.startswith("xauc") and gidx == g.reference:
                continue
            m = EXTENDED_INDEX[metric]
            s = float(share[m, gidx])
            low, high, reason = float(lo[m, gidx]), float(hi[m, gidx]), ""
            if s > limit:
                reason = DEGENERATE_REASON.format(
                    share=s, n_boot=n_boot, where="", limit=limit,
                    needs="positives on one side and negatives on the other")
                low = high = float("nan")
            elif bca_bad[m, gidx]:
                reason = BCA_UNDEFINED_REASON
            elif low == high:
                reason = COLLAPSED_REASON.format(what=metric, value=low)
                low = high = float("nan")
            rows.append((task, g.attribute, gname, metric, float(e[m, gidx]), low, high,
                         ci_method, s, reason))
    return rows


def _disparity_rows(task: str, g: Grouping, r: np.ndarray, e: np.ndarray,
                    jk: np.ndarray | None, level: float, method: str, n_boot: int,
                    limit: float, ci_method: str, skip: frozenset[str]) -> list[tuple]:
    ref = int(g.reference)  # type: ignore[arg-type]
    others = [i for i in range(len(g.groups)) if i != ref]
    if not others:
        return []
    idx = np.asarray(others)
    rg, rr = r[:, :, idx], r[:, :, [ref]]
    diff = rg - rr
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rr != 0, rg / rr, np.nan)
    e_diff = e[:, idx] - e[:, [ref]]
    with np.errstate(divide="ignore", invalid="ignore"):
        e_ratio = np.where(e[:, [ref]] != 0, e[:, idx] / e[:, [ref]], np.nan)
    j_diff = j_ratio = None
    if jk is not None:
        jg, jr = jk[:, :, idx], jk[:, :, [ref]]
        j_diff = jg - jr
        with np.errstate(divide="ignore", invalid="ignore"):
            j_ratio = np.where(jr != 0, jg / jr, np.nan)
    d_share, r_share = degenerate_share(diff), degenerate_share(ratio)
    zero_ref = np.mean((rr == 0) & ~np.isnan(rg), axis=0)
    d_lo, d_hi, d_bad = _limits(diff, e_diff, j_diff, level, method)
    r_lo, r_hi, r_bad = _limits(ratio, e_ratio, j_ratio, level, method)
    tail = min(TAIL_REPLICATES / (diff.shape[0] + 1.0), (1.0 - level) / 2.0)
    if jk is None:
        pval = interval_p_value(diff, point=e_diff, tail=tail)
    else:
        pval = interval_p_value(diff, e_diff, jackknife_acceleration(j_diff), point=e_diff,
                                tail=tail)
    rows = []
    where = " in the group and in the reference group"
    for k, gidx in enumerate(others):
        for m, metric in enumerate(METRICS):
            if metric in skip:
                continue
            reasons = []
            dl, dh, p = float(d_lo[m, k]), float(d_hi[m, k]), float(pval[m, k])
            rl, rh = float(r_lo[m, k]), float(r_hi[m, k])
            if d_share[m, k] > limit:
                reasons.append(_reason(float(d_share[m, k]), n_boot, limit, metric, where))
                dl = dh = p = rl = rh = float("nan")
            elif r_share[m, k] > limit:
                reasons.append(RATIO_ZERO_REASON.format(share=float(zero_ref[m, 0])).lstrip("; "))
                rl = rh = float("nan")
            if (d_bad[m, k] or r_bad[m, k]) and not reasons:
                reasons.append(BCA_UNDEFINED_REASON)
            if not reasons and dl == dh:
                reasons.append(COLLAPSED_REASON.format(what=f"{metric} difference", value=dl))
                dl = dh = p = rl = rh = float("nan")
            elif rl == rh and not math.isnan(rl):
                reasons.append(COLLAPSED_REASON.format(what=f"{metric} ratio", value=rl))
                rl = rh = float("nan")
            rows.append((task, g.attribute, g.groups[gidx], g.groups[ref], metric, dl, dh,
                         rl, rh, ci_method, p, "; ".join(reasons)))
    return rows
