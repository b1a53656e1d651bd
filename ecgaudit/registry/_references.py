"""Independent reference implementations of the registered metrics (used by the tests).

Each calls an independent library (scikit-learn, statsmodels, scikit-survival) or writes the
closed form out directly; none uses :mod:`ecgaudit.metrics`. Libraries are imported inside
the functions, so importing the registry needs none of them. Undefined values are ``nan``.

Signatures by outcome type
--------------------------
binary
    ``f(y, p, threshold) -> float``.
ranking (binary, ``table="ranking"``)
    ``f(y, p, in_group, in_reference) -> float``.
continuous
    ``f(measured, predicted, tolerance) -> float``.
survival
    ``f(time, event, score, prob, horizon, horizons) -> float``; the threshold rates take
    ``threshold`` as a keyword and need no censoring up to the horizon.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "auprc", "auroc", "binary_rate", "brier", "cal_intercept", "cal_slope",
    "continuous_reference", "ece", "oe_ratio", "ranking_reference", "survival_reference",
]

NAN = float("nan")
#: Replacement of exact 0 / 1 scores in the recalibration covariate (documented rule).
_SATURATED = 1e-6


def _both(y: np.ndarray) -> bool:
    import numpy as np

    y = np.asarray(y)
    return bool(np.any(y == 1) and np.any(y == 0))


def auroc(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """``sklearn.metrics.roc_auc_score`` (``nan`` without both classes or distinct scores)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    if not _both(y) or np.ptp(p) == 0:
        return NAN
    return float(roc_auc_score(y, p))


def auprc(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """``sklearn.metrics.average_precision_score`` (same definedness as AUROC)."""
    import numpy as np
    from sklearn.metrics import average_precision_score

    if not _both(y) or np.ptp(p) == 0:
        return NAN
    return float(average_precision_score(y, p))


def brier(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """``sklearn.metrics.brier_score_loss``."""
    import numpy as np
    from sklearn.metrics import brier_score_loss

    if np.size(y) == 0:
        return NAN
    return float(brier_score_loss(np.asarray(y), np.asarray(p, float), pos_label=1))


def oe_ratio(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """``sum(y) / sum(p)`` (``nan`` when no events are expected)."""
    import numpy as np

    expected = math.fsum(np.asarray(p, float))
    return math.fsum(np.asarray(y, float)) / expected if np.size(y) and expected > 0 else NAN


def _covariate(p: np.ndarray) -> np.ndarray:
    """``logit(p)``, exact 0 / 1 moved to the nearest unsaturated score (or 1e-6)."""
    import numpy as np
    from scipy.special import logit

    p = np.asarray(p, float)
    inner = p[(p > 0) & (p < 1)]
    lo = min(inner.min(initial=_SATURATED), _SATURATED)
    hi = max(inner.max(initial=1 - _SATURATED), 1 - _SATURATED)
    return np.asarray(logit(np.clip(p, lo, hi)))


def _logit_fit(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Unpenalised ``statsmodels`` logistic fit of ``y`` on ``[1, x]``."""
    import warnings

    import numpy as np
    import statsmodels.api as sm

    y = np.asarray(y, float)
    if not _both(y) or np.ptp(x) == 0:
        return NAN, NAN
    pos, neg = x[y == 1], x[y == 0]
    if pos.min() > neg.max() or neg.min() > pos.max():  # separation: no finite MLE
        return NAN, NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = sm.Logit(y, sm.add_constant(x, has_constant="add")).fit(
            disp=0, method="newton", maxiter=200, tol=1e-12)
    return float(fit.params[0]), float(fit.params[1])


def cal_intercept(y: np.ndarray, p: np.ndarray, threshold: float = 0.5,
                  x: np.ndarray | None = None) -> float:
    """Intercept of ``statsmodels.Logit(y ~ 1 + logit(p))`` (``x``: a given covariate)."""
    import numpy as np

    return _logit_fit(y, _covariate(p) if x is None else np.asarray(x, float))[0]


def cal_slope(y: np.ndarray, p: np.ndarray, threshold: float = 0.5,
              x: np.ndarray | None = None) -> float:
    """Slope of ``statsmodels.Logit(y ~ 1 + logit(p))``."""
    import numpy as np

    return _logit_fit(y, _covariate(p) if x is None else np.asarray(x, float))[1]


def ece(y: np.ndarray, p: np.ndarray, threshold: float = 0.5, n_bins: int = 10) -> float:
    """Compute the ECE over equal-mass bins, written out from its definition.

    Rows sorted by score (ties negatives first), split by ``numpy.array_split`` into
    ``min(n_bins, n)`` bins; ``sum_b n_b |mean y_b - mean p_b| / n``.
    """
    import numpy as np

    y, p = np.asarray(y, float), np.asarray(p, float)
    if y.size == 0:
        return NAN
    ranked = sorted(zip(p.tolist(), y.tolist()))
    bins = np.array_split(np.array(ranked, dtype=float).reshape(-1, 2), min(n_bins, y.size))
    return math.fsum(len(b) * abs(b[:, 1].mean() - b[:, 0].mean()) for b in bins) / y.size


def binary_rate(name: str) -> Callable[..., float]:
    """Return the reference of one threshold rate from ``sklearn.metrics.confusion_matrix``."""

    def rate(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
        import numpy as np
        from sklearn.metrics import confusion_matrix

        flag = (np.asarray(p, float) >= threshold).astype(int)
        tn, fp, fn, tp = (int(v) for v in confusion_matrix(
            np.asarray(y, int), flag, labels=[0, 1]).ravel())
        num, den = {"sensitivity": (tp, tp + fn), "specificity": (tn, tn + fp),
                    "ppv": (tp, tp + fp), "npv": (tn, tn + fn), "fnr": (fn, tp + fn),
                    "fpr": (fp, tn + fp), "flag_rate": (tp + fp, tp + fp + tn + fn)}[name]
        return num / den if den else NAN

    rate.__name__ = name
    return rate


def _cross_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    if pos.size == 0 or neg.size == 0:
        return NAN
    return float(roc_auc_score(np.r_[np.ones(pos.size), np.zeros(neg.size)], np.r_[pos, neg]))


def ranking_reference(name: str) -> Callable[..., float]:
    """Return the reference of one ranking metric: ``roc_auc_score`` on the two comparison sets."""

    def metric(y: np.ndarray, p: np.ndarray, in_group: np.ndarray,
               in_reference: np.ndarray) -> float:
        import numpy as np

        y, p = np.asarray(y), np.asarray(p, float)
        g, r = np.asarray(in_group, bool), np.asarray(in_reference, bool)
        pos, neg = {"bpsn_auc": (~g, g), "bnsp_auc": (g, ~g), "xauc_group_vs_ref": (g, r),
                    "xauc_ref_vs_group": (r, g)}[name]
        return _cross_auc(p[pos & (y == 1)], p[neg & (y == 0)])

    metric.__name__ = name
    return metric


def _ols(measured: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """OLS of measured on predicted (undefined for constant predictions)."""
    import numpy as np
    import statsmodels.api as sm

    if np.ptp(np.asarray(predicted, float)) == 0:
        return NAN, NAN
    fit = sm.OLS(np.asarray(measured, float),
                 sm.add_constant(np.asarray(predicted, float), has_constant="add")).fit()
    return float(fit.params[0]), float(fit.params[1])


def _loa(d: np.ndarray, sign: float) -> float:
    import numpy as np

    if d.size < 2:
        return NAN
    return float(np.mean(d) + sign * 1.96 * np.std(d, ddof=1))


def continuous_reference(name: str) -> Callable[..., float]:
    """Return the reference of one continuous metric (sklearn, statsmodels, closed form)."""

    def metric(measured: np.ndarray, predicted: np.ndarray, tolerance: float | None) -> float:
        import numpy as np
        from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

        y, x = np.asarray(measured, float), np.asarray(predicted, float)
        d = x - y
        funcs: dict[str, Callable[[], float]] = {
            "bias": lambda: float(np.mean(d)),
            "mae": lambda: float(mean_absolute_error(y, x)),
            "rmse": lambda: math.sqrt(mean_squared_error(y, x)),
            "loa_lower": lambda: _loa(d, -1.0), "loa_upper": lambda: _loa(d, 1.0),
            "slope": lambda: _ols(y, x)[1], "intercept": lambda: _ols(y, x)[0],
            "r2": lambda: NAN if np.ptp(y) == 0 else float(r2_score(y, x)),
            "within_tolerance": lambda: (NAN if tolerance is None
                                         else float(np.mean(np.abs(d) <= tolerance))),
        }
        return funcs[name]()

    metric.__name__ = name
    return metric


def _km_risk(time: np.ndarray, event: np.ndarray, horizon: float) -> float:
    import numpy as np
    from sksurv.nonparametric import kaplan_meier_estimator

    t, s = kaplan_meier_estimator(np.asarray(event) == 1, np.asarray(time, float))
    i = int(np.searchsorted(t, horizon, side="right")) - 1
    return float(1.0 - (s[i] if i >= 0 else 1.0))


def _uncensored_rate(name: str, time: np.ndarray, event: np.ndarray, prob: np.ndarray,
                     horizon: float, threshold: float) -> float:
    """Compute a threshold rate by the horizon on data without censoring up to the horizon."""
    import numpy as np

    if np.any((np.asarray(event) != 1) & (np.asarray(time) <= horizon)):
        raise ValueError("this reference needs no censoring up to the horizon")
    case = np.asarray(time) <= horizon
    flag = np.asarray(prob, float) >= threshold
    num, den = {"sensitivity": (flag & case, case), "specificity": (~flag & ~case, ~case),
                "ppv": (flag & case, flag)}[name]
    return float(num.sum() / den.sum()) if den.any() else NAN


def survival_reference(name: str) -> Callable[..., float] | None:
    """Return the reference of one survival metric (sksurv; ``None`` for ``cal_ici``)."""
    if name == "cal_ici":
        return None

    def metric(time: np.ndarray, event: np.ndarray, score: np.ndarray, prob: Any,
               horizon: float | None, horizons: Sequence[float], *,
               threshold: float = 0.5) -> float:
        import numpy as np
        from sksurv import metrics as sm
        from sksurv.util import Surv

        e, t = np.asarray(event) == 1, np.asarray(time, float)
        y = Surv.from_arrays(e, t)
        hs = sorted(float(h) for h in horizons)
        if name == "harrell_c":
            return float(sm.concordance_index_censored(e, t, score)[0])
        if name == "uno_c":
            return float(sm.concordance_index_ipcw(y, y, score, tau=hs[-1])[0])
        if name == "td_auroc":
            return float(sm.cumulative_dynamic_auc(y, y, score, [horizon])[0][0])
        if name in ("sensitivity", "specificity", "ppv"):
            return _uncensored_rate(name, t, np.asarray(event), prob, float(horizon or 0.0),
                                    threshold)
        p = np.asarray(prob, float)
        if name == "brier":
            return float(sm.brier_score(y, y, (1 - p)[:, None], [horizon])[1][0])
        if name == "ibs":
            surv = np.column_stack([1 - p] * len(hs))
            return float(sm.integrated_brier_score(y, y, surv, hs))
        observed = _km_risk(t, np.asarray(event), float(horizon or 0.0))
        predicted = float(np.mean(p))
        return {"observed_risk": observed, "predicted_risk": predicted,
                "oe_ratio": observed / predicted if predicted > 0 else NAN}[name]

    metric.__name__ = name
    return metric
