"""The survival metrics, declared in one table (for the future metric registry to absorb).

Each entry says what the metric is, which way is better, what it needs (a risk ordering
only, or a probability of the event by the horizon), whether it depends on a horizon, how
its interval is computed, and which independent implementation the tests compare it with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["SURVIVAL_METRICS", "SURVIVAL_METRIC_NAMES", "SurvivalMetric", "survival_metric"]


@dataclass(frozen=True)
class SurvivalMetric:
    """Declaration of one survival metric.

    Attributes
    ----------
    name, label, definition : str
        Identifier (``metrics.csv``), human label, one-sentence definition.
    higher_is_better : bool or None
        Direction (``None``: neither, e.g. O/E whose target is 1).
    needs : {"risk", "probability"}
        ``risk``: any score where higher means higher risk; ``probability``: the predicted
        probability of the event by the horizon.
    horizon : {"none", "each", "largest"}
        Whether the metric is reported at every horizon, once at the largest, or has none.
    interval : str
        ``ci_method`` of the interval without bootstrap, and with it.
    reference : str
        The independent implementation (or closed form) the tests check it against.
    bounded : bool
        The value lies in [0, 1].
    """

    name: str
    label: str
    definition: str
    higher_is_better: bool | None
    needs: Literal["risk", "probability"]
    horizon: Literal["none", "each", "largest"]
    interval: str
    reference: str
    bounded: bool = True


SURVIVAL_METRICS: tuple[SurvivalMetric, ...] = (
    SurvivalMetric(
        "harrell_c", "Harrell's C-index",
        "Share of comparable pairs (the earlier time is an event) in which the earlier "
        "patient has the higher risk; tied risks count 1/2; two events at the same time are "
        "not comparable, an event and a censoring at the same time are.",
        True, "risk", "none", "ij-wald (closed form); bootstrap",
        "sksurv.metrics.concordance_index_censored"),
    SurvivalMetric(
        "uno_c", "Uno's C-index (IPCW)",
        "Concordance with pairs weighted by 1/G(T_i)^2, events truncated before the "
        "largest horizon.", True, "risk", "largest", "bootstrap",
        "sksurv.metrics.concordance_index_ipcw(tau=largest horizon)"),
    SurvivalMetric(
        "td_auroc", "Time-dependent AUROC",
        "Cumulative/dynamic AUROC at the horizon: events by the horizon (weight 1/G(T)) vs "
        "patients event-free past it (weight 1/G(horizon)).", True, "risk", "each",
        "bootstrap", "sksurv.metrics.cumulative_dynamic_auc"),
    SurvivalMetric(
        "brier", "Brier score (IPCW)",
        "Inverse-probability-of-censoring-weighted mean squared error of the predicted "
        "risk for the event by the horizon.", False, "probability", "each", "bootstrap",
        "sksurv.metrics.brier_score"),
    SurvivalMetric(
        "ibs", "Integrated Brier score",
        "Trapezoidal integral of the IPCW Brier score over the audited horizons, divided by "
        "their span (needs two or more horizons).", False, "probability", "largest",
        "bootstrap", "sksurv.metrics.integrated_brier_score"),
    SurvivalMetric(
        "observed_risk", "Observed risk",
        "Kaplan-Meier (or, with competing events, Aalen-Johansen) probability of the event "
        "by the horizon.", None, "risk", "each", "bootstrap",
        "sksurv.nonparametric.kaplan_meier_estimator / closed form"),
    SurvivalMetric(
        "predicted_risk", "Mean predicted risk",
        "Mean predicted probability of the event by the horizon.", None, "probability",
        "each", "bootstrap", "numpy mean"),
    SurvivalMetric(
        "oe_ratio", "Observed / expected",
        "Observed risk divided by mean predicted risk at the horizon (1 is calibrated in "
        "the large).", None, "probability", "each", "bootstrap", "closed form",
        bounded=False),
    SurvivalMetric(
        "cal_ici", "Integrated calibration index",
        "Mean absolute gap between a binned, IPCW-weighted kernel-smoothed calibration "
        "curve at the horizon and the predicted risk.", False, "probability", "each",
        "bootstrap", "simulation (calibrated vs shifted predictions)"),
    SurvivalMetric(
        "sensitivity", "Sensitivity at the threshold",
        "IPCW share of events by the horizon with predicted risk >= the frozen threshold.",
        True, "probability", "each", "bootstrap", "closed form on uncensored data"),
    SurvivalMetric(
        "specificity", "Specificity at the threshold",
        "IPCW share of patients event-free at the horizon with predicted risk below the "
        "frozen threshold.", True, "probability", "each", "bootstrap",
        "closed form on uncensored data"),
    SurvivalMetric(
        "ppv", "PPV at the threshold",
        "IPCW share of flagged patients (risk >= threshold) with the event by the horizon.",
        True, "probability", "each", "bootstrap", "closed form on uncensored data"),
)

SURVIVAL_METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in SURVIVAL_METRICS)

_BY_NAME = {m.name: m for m in SURVIVAL_METRICS}


def survival_metric(name: str) -> SurvivalMetric:
    """Return the declaration of survival metric ``name``."""
    return _BY_NAME[name]
