"""Declarations of the continuous-outcome (agreement) metrics, in report order.

``extra`` carries ``min_n`` (fewest rows with which the metric is defined), ``interval``
(the ``ci_method`` of its closed-form interval; ``"bootstrap"``: none without B) and
``contrast`` (the disparity contrast reported first).
"""

from __future__ import annotations

from ecgaudit.registry import _references as ref
from ecgaudit.registry._spec import Direction, MetricSpec

__all__ = ["CONTINUOUS_SPECS"]

_BOOT = ("bootstrap-percentile", "bootstrap-bca")


def _cont(name: str, label: str, short: str, definition: str, direction: Direction,
          target: float | None, min_n: int, interval: str, contrast: str, test: str,
          reference: str, needs: tuple[str, ...] = (), bounded: bool = False) -> MetricSpec:
    intervals = _BOOT if interval == "bootstrap" else (interval, *_BOOT)
    text = f"at least {min_n} rows" + (" and a tolerance" if "tolerance" in needs else "")
    return MetricSpec(
        name, "continuous", label, short, definition, direction, target=target,
        needs=("rows", *needs), needs_text=text, intervals=intervals, disparity_test=test,
        family="agreement", bounded=bounded, reference=ref.continuous_reference(name),
        reference_name=reference,
        extra={"min_n": min_n, "interval": interval, "contrast": contrast})


CONTINUOUS_SPECS: tuple[MetricSpec, ...] = (
    _cont("bias", "Bias (mean predicted - measured)", "Bias", "mean(x - y)", "target", 0.0, 2,
          "t", "difference", "welch-t", "numpy mean; scipy.stats.t"),
    _cont("mae", "Mean absolute error", "MAE", "mean(|x - y|)", "lower", None, 2, "t-abs",
          "ratio", "welch-t", "numpy mean of |d|; scipy.stats.t"),
    _cont("rmse", "Root mean squared error", "RMSE", "sqrt(mean((x - y)^2))", "lower", None,
          2, "t-sq-sqrt", "ratio", "z", "numpy; sklearn mean_squared_error"),
    _cont("loa_lower", "Lower 95% limit of agreement", "LoA lower", "bias - 1.96 SD(x - y)",
          "target", 0.0, 3, "bland-altman-approx", "difference", "z",
          "exact sample formula; Bland & Altman (1999)"),
    _cont("loa_upper", "Upper 95% limit of agreement", "LoA upper", "bias + 1.96 SD(x - y)",
          "target", 0.0, 3, "bland-altman-approx", "difference", "z",
          "exact sample formula; Bland & Altman (1999)"),
    _cont("slope", "Calibration slope (measured on predicted)", "Slope",
          "OLS slope of y on x", "target", 1.0, 3, "ols-t", "difference", "z",
          "statsmodels OLS"),
    _cont("intercept", "Calibration intercept (measured on predicted)", "Intercept",
          "OLS intercept of y on x", "target", 0.0, 3, "ols-t", "difference", "z",
          "statsmodels OLS"),
    _cont("r2", "Coefficient of determination of the predictions", "R²",
          "1 - sum((y - x)^2) / sum((y - mean y)^2)", "higher", None, 2, "bootstrap",
          "difference", "bootstrap", "sklearn r2_score"),
    _cont("within_tolerance", "Share within the clinical tolerance", "Within tolerance",
          "mean(|x - y| <= tolerance)", "higher", None, 1, "wilson", "difference",
          "two-proportion-z", "numpy mean; Wilson interval", needs=("tolerance",),
          bounded=True),
)
