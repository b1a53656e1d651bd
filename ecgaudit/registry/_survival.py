"""Declarations of the survival (time-to-event) metrics, in report order.

``extra`` carries ``score`` (``risk``: any score where higher means higher risk;
``probability``: the predicted probability of the event by the horizon), ``horizon``
(``none``, ``each`` or ``largest``: reported without a horizon, at every horizon, or once at
the largest) and ``interval`` (the interval in words).
"""

from __future__ import annotations

from ecgaudit.registry import _references as ref
from ecgaudit.registry._spec import Direction, MetricSpec

__all__ = ["SURVIVAL_SPECS"]

_BOOT = ("bootstrap-percentile", "bootstrap-bca")


def _surv(name: str, label: str, short: str, definition: str, direction: Direction,
          score: str, horizon: str, reference: str, *, target: float | None = None,
          bounded: bool = True, closed: str = "", test: str = "bootstrap") -> MetricSpec:
    needs = ("rows", "events") + (("horizon",) if horizon != "none" else ())
    needs += ("probability",) if score == "probability" else ()
    interval = f"{closed} (closed form); bootstrap" if closed else "bootstrap"
    return MetricSpec(
        name, "survival", label, short, definition, direction, target=target, needs=needs,
        needs_text="events" + (" by the horizon" if horizon != "none" else ""),
        intervals=((closed,) if closed else ()) + _BOOT, disparity_test=test,
        family="concordance" if horizon == "none" else "horizon", bounded=bounded,
        reference=ref.survival_reference(name), reference_name=reference,
        extra={"score": score, "horizon": horizon, "interval": interval})


SURVIVAL_SPECS: tuple[MetricSpec, ...] = (
    _surv("harrell_c", "Harrell's C-index", "C-index",
          "Share of comparable pairs (the earlier time is an event) in which the earlier "
          "patient has the higher risk; tied risks count 1/2; two events at the same time "
          "are not comparable, an event and a censoring at the same time are.",
          "higher", "risk", "none", "sksurv.metrics.concordance_index_censored",
          closed="ij-wald", test="wald-z"),
    _surv("uno_c", "Uno's C-index (IPCW)", "Uno's C",
          "Concordance with pairs weighted by 1/G(T_i)^2, events truncated before the "
          "largest horizon.", "higher", "risk", "largest",
          "sksurv.metrics.concordance_index_ipcw(tau=largest horizon)"),
    _surv("td_auroc", "Time-dependent AUROC", "td-AUROC",
          "Cumulative/dynamic AUROC at the horizon: events by the horizon (weight 1/G(T)) "
          "vs patients event-free past it (weight 1/G(horizon)).", "higher", "risk", "each",
          "sksurv.metrics.cumulative_dynamic_auc"),
    _surv("brier", "Brier score (IPCW)", "Brier",
          "Inverse-probability-of-censoring-weighted mean squared error of the predicted "
          "risk for the event by the horizon.", "lower", "probability", "each",
          "sksurv.metrics.brier_score"),
    _surv("ibs", "Integrated Brier score", "Integrated Brier",
          "Trapezoidal integral of the IPCW Brier score over the audited horizons, divided "
          "by their span (needs two or more horizons).", "lower", "probability", "largest",
          "sksurv.metrics.integrated_brier_score"),
    _surv("observed_risk", "Observed risk", "Observed risk",
          "Kaplan-Meier (or, with competing events, Aalen-Johansen) probability of the "
          "event by the horizon.", "none", "risk", "each",
          "sksurv.nonparametric.kaplan_meier_estimator / closed form", test="none"),
    _surv("predicted_risk", "Mean predicted risk", "Predicted risk",
          "Mean predicted probability of the event by the horizon.", "none", "probability",
          "each", "numpy mean", test="none"),
    _surv("oe_ratio", "Observed / expected", "O/E",
          "Observed risk divided by mean predicted risk at the horizon (1 is calibrated in "
          "the large).", "target", "probability", "each", "closed form", target=1.0,
          bounded=False),
    _surv("cal_ici", "Integrated calibration index", "ICI",
          "Mean absolute gap between a binned, IPCW-weighted kernel-smoothed calibration "
          "curve at the horizon and the predicted risk.", "lower", "probability", "each",
          "simulation (calibrated vs shifted predictions)"),
    _surv("sensitivity", "Sensitivity at the threshold", "Sensitivity",
          "IPCW share of events by the horizon with predicted risk >= the frozen threshold.",
          "higher", "probability", "each", "closed form on uncensored data"),
    _surv("specificity", "Specificity at the threshold", "Specificity",
          "IPCW share of patients event-free at the horizon with predicted risk below the "
          "frozen threshold.", "higher", "probability", "each",
          "closed form on uncensored data"),
    _surv("ppv", "PPV at the threshold", "PPV",
          "IPCW share of flagged patients (risk >= threshold) with the event by the horizon.",
          "higher", "probability", "each", "closed form on uncensored data"),
)
