"""Every metric of one task in one group, with intervals and honest statuses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ecgaudit.metrics._binary import ConfusionCounts, auprc, brier, confusion_counts
from ecgaudit.metrics._calibration import ece, logistic_recalibration, oe_ratio
from ecgaudit.metrics._delong import delong_auc_variance
from ecgaudit.metrics._smallsample import (
    auc_score_limits,
    poisson_ratio_limits,
    wilson_limits,
    z_of,
)
from ecgaudit.registry import REGISTRY
from ecgaudit.schema import METRICS, RATE_METRICS

__all__ = ["GroupStats", "MetricValue", "group_stats", "stats_from_estimates"]

NAN = float("nan")

#: Reasons (constants so tests can match them).
REASON_NO_POS = "no positive cases in this group"
REASON_NO_NEG = "no negative cases in this group"
REASON_NO_FLAGGED = "no ECG is flagged at the threshold"
REASON_NO_UNFLAGGED = "every ECG is flagged at the threshold"
REASON_EMPTY = "empty group"
REASON_UNSTABLE = "fewer than {k} {what}; interpret with caution"
REASON_NO_FIT = (
    "no finite recalibration fit: the scores separate the classes (or are all equal)"
)
REASON_CONSTANT = (
    "every score in this group has the same value: the AUROC (0.5 by ties) and AUPRC "
    "(the prevalence) do not measure discrimination here"
)

#: Closed-form interval names; ``-clustered`` is appended with a patient column.
METHOD_RATE = "wilson"
METHOD_AUROC = "newcombe-score"
METHOD_OE = "poisson-exact"
METHOD_AUPRC = "wilson-ap"

#: Metrics undefined without positives / without negatives (from the registry).
_NEEDS_POS = frozenset(s.name for s in REGISTRY.select("binary") if "positives" in s.needs)
_NEEDS_NEG = frozenset(s.name for s in REGISTRY.select("binary") if "negatives" in s.needs)


@dataclass(frozen=True)
class MetricValue:
    """One metric's estimate, interval and status."""

    estimate: float
    ci_low: float = NAN
    ci_high: float = NAN
    ci_method: str = "none"
    status: str = "ok"
    reason: str = ""


@dataclass
class GroupStats:
    """All metrics of one task in one group, plus what disparity tests need."""

    n: int
    n_pos: int
    values: dict[str, MetricValue] = field(default_factory=dict)
    auc_var: float = NAN
    counts: ConfusionCounts = field(default_factory=lambda: ConfusionCounts(0, 0, 0, 0))
    #: Sum of the scores (expected events, the denominator of O/E).
    expected: float = NAN
    #: Design effect per rate / ``"auroc"`` / ``"prevalence"`` (patient clustering).
    design: dict[str, float] = field(default_factory=dict)
    #: Closed-form intervals used only when the bootstrap collapses: metric -> (lo, hi, method).
    fallback: dict[str, tuple[float, float, str]] = field(default_factory=dict)


def _undefined(reason: str) -> MetricValue:
    return MetricValue(estimate=NAN, status="insufficient", reason=reason)


def _missing_class(metric: str, n_pos: int, n_neg: int, counts: ConfusionCounts) -> str:
    """Return why ``metric`` is undefined, or ``""`` if it is defined."""
    if n_pos + n_neg == 0:
        return REASON_EMPTY
    need_pos = metric in _NEEDS_POS
    need_neg = metric in _NEEDS_NEG
    if need_pos and n_pos == 0:
        return REASON_NO_POS
    if need_neg and n_neg == 0:
        return REASON_NO_NEG
    if metric == "ppv" and counts.tp + counts.fp == 0:
        return REASON_NO_FLAGGED
    if metric == "npv" and counts.tn + counts.fn == 0:
        return REASON_NO_UNFLAGGED
    return ""


def group_stats(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    *,
    level: float = 0.95,
    clip: float = 0.0,
    ece_bins: int = 10,
    min_events: int = 10,
) -> GroupStats:
    """Compute every metric in :data:`ecgaudit.schema.METRICS` for one group.

    AUROC gets Newcombe's score interval, threshold rates a Wilson interval and O/E an
    exact Poisson interval; other metrics get no closed-form interval here
    (``ci_method="none"``; the bootstrap fills them in). Constant scores make AUROC and
    AUPRC ``insufficient``.
    Undefined metrics get status ``insufficient`` and no number; defined metrics of a
    group with fewer than ``min_events`` positives or negatives get ``unstable``.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels of the group's rows.
    p : ndarray of float
        Probabilities of the group's rows.
    threshold : float
        Frozen operating threshold (flag = ``p >= threshold``).
    level : float
        Confidence level.
    clip : float
        Score clipping for the calibration fit.
    ece_bins : int
        Equal-mass bins for ECE.
    min_events : int
        Minimum positives and negatives for a stable estimate.

    Returns
    -------
    GroupStats
    """
    y = np.asarray(y)
    p = np.asarray(p, dtype=float)
    n = int(y.size)
    n_pos = int(np.count_nonzero(y))
    counts = confusion_counts(y, p, threshold)
    estimates: dict[str, float] = {}
    auc_var = NAN
    cal_reason = ""
    if n_pos and n - n_pos:
        estimates["auroc"], auc_var = delong_auc_variance(y, p)
        estimates["auprc"] = auprc(y, p)
        fit = logistic_recalibration(y, p, clip=clip)
        estimates["cal_intercept"], estimates["cal_slope"] = fit.intercept, fit.slope
        cal_reason = fit.reason
    if n > 0:
        estimates["brier"] = brier(y, p)
        estimates["oe_ratio"] = oe_ratio(y, p)
        estimates["ece"] = ece(y, p, ece_bins)
        estimates["expected"] = float(np.sum(p))
    constant = bool(n > 0 and np.min(p) == np.max(p))
    return stats_from_estimates(n, n_pos, counts, estimates, auc_var, level=level,
                                min_events=min_events, cal_reason=cal_reason,
                                constant=constant)


def stats_from_estimates(
    n: int, n_pos: int, counts: ConfusionCounts, estimates: dict[str, float], auc_var: float,
    *, level: float = 0.95, min_events: int = 10, cal_reason: str = "",
    constant: bool = False, design: dict[str, float] | None = None,
) -> GroupStats:
    """Build a group's :class:`GroupStats` from its point estimates (any engine).

    Parameters
    ----------
    n, n_pos : int
        Rows and positives of the group.
    counts : ConfusionCounts
        Confusion counts at the frozen threshold.
    estimates : dict
        Point estimates of ``auroc, auprc, cal_intercept, cal_slope, brier, oe_ratio,
        ece`` and ``expected`` (the sum of the scores, for O/E's interval; missing or
        ``nan`` where undefined); rates come from ``counts``.
    auc_var : float
        DeLong variance of the AUROC.
    level : float
        Confidence level of the DeLong and Wilson intervals.
    min_events : int
        Minimum positives and negatives for a stable estimate.
    cal_reason : str
        Why the recalibration fit is undefined, if it is.
    constant : bool
        Whether every score of the group is the same (AUROC/AUPRC then insufficient).
    design : dict, optional
        Design effects of patient clustering (:mod:`ecgaudit.metrics._cluster`) per rate,
        ``"auroc"`` and ``"prevalence"``; ``None``: independent rows (no suffix on the
        interval names).

    Returns
    -------
    GroupStats
    """
    n_neg = n - n_pos
    deff = dict(design or {})
    suffix = "-clustered" if design is not None else ""
    stats = GroupStats(n=n, n_pos=n_pos, counts=counts, design=deff,
                       expected=float(estimates.get("expected", NAN)))
    unstable = ""
    if n_pos < min_events:
        unstable = REASON_UNSTABLE.format(k=min_events, what="positive cases")
    elif n_neg < min_events:
        unstable = REASON_UNSTABLE.format(k=min_events, what="negative cases")
    z = z_of(level)

    def est(metric: str) -> float:
        return float(estimates.get(metric, NAN))

    raw: dict[str, MetricValue] = {}
    if not _missing_class("auroc", n_pos, n_neg, counts):
        auc, var = est("auroc"), float(auc_var)
        stats.auc_var = var
        lo, hi = (float(v) for v in auc_score_limits(auc, n_pos, n_neg, z,
                                                     deff.get("auroc", 1.0)))
        raw["auroc"] = MetricValue(auc, lo, hi, METHOD_AUROC + suffix)
        ap = est("auprc")
        raw["auprc"] = MetricValue(ap)
        if math.isfinite(ap):
            lo, hi = (float(v) for v in wilson_limits(ap * n_pos, n_pos, z,
                                                      deff.get("sensitivity", 1.0)))
            stats.fallback["auprc"] = (lo, hi, METHOD_AUPRC + suffix)
        if constant:
            raw["auroc"] = raw["auprc"] = _undefined(REASON_CONSTANT)
        if math.isfinite(est("cal_intercept")) and math.isfinite(est("cal_slope")):
            raw["cal_intercept"] = MetricValue(est("cal_intercept"))
            raw["cal_slope"] = MetricValue(est("cal_slope"))
        else:
            reason = cal_reason or REASON_NO_FIT
            raw["cal_intercept"] = _undefined(reason)
            raw["cal_slope"] = _undefined(reason)
    if n > 0:
        raw["brier"] = MetricValue(est("brier"))
        oe = est("oe_ratio")
        if math.isfinite(oe):
            expected = est("expected")
            lo, hi = (float(v) for v in poisson_ratio_limits(
                n_pos, expected, level, deff.get("prevalence", 1.0)))
            raw["oe_ratio"] = (MetricValue(oe, lo, hi, METHOD_OE + suffix)
                               if math.isfinite(expected) else MetricValue(oe))
        else:
            raw["oe_ratio"] = _undefined("no events expected (all scores 0)")
        raw["ece"] = MetricValue(est("ece"))
    for metric in RATE_METRICS:
        if _missing_class(metric, n_pos, n_neg, counts):
            continue
        k, d = counts.rate(metric)
        lo, hi = (float(v) for v in wilson_limits(k, d, z, deff.get(metric, 1.0)))
        raw[metric] = MetricValue(k / d, lo, hi, METHOD_RATE + suffix)

    for metric in METRICS:
        if metric in raw:
            value = raw[metric]
            if value.status == "ok" and unstable:
                value = MetricValue(
                    value.estimate, value.ci_low, value.ci_high, value.ci_method,
                    "unstable", unstable,
                )
            stats.values[metric] = value
        else:
            stats.values[metric] = _undefined(_missing_class(metric, n_pos, n_neg, counts))
    return stats
