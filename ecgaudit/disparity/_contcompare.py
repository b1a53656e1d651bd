"""Continuous-outcome disparities: each metric of a group vs the reference group.

Groups of one attribute are disjoint, so the two estimates are independent and the
standard error of a difference is ``sqrt(se_g^2 + se_r^2)``:

* ``bias``, ``mae``: Welch t interval and test for the difference of two means (of ``d``,
  resp. ``|d|``; Welch-Satterthwaite degrees of freedom). The MAE ratio gets a
  delta-method interval on the log scale.
* ``rmse``: delta-method (normal) intervals for the difference and, on the log scale, the
  ratio, from the standard error of the MSE; z-test on the log ratio.
* ``loa_lower`` / ``loa_upper``: normal interval from the two Bland-Altman approximate
  standard errors; z-test.
* ``slope`` / ``intercept``: normal (Wald) interval from the two OLS standard errors; z-test.
* ``within_tolerance``: Newcombe difference, Katz ratio, pooled two-proportion z-test.
* ``r2``: point difference only (the bootstrap adds an interval and a p-value).

A ratio is reported only where the spec's contrast is a ratio or the metric is a share
(MAE, RMSE, within-tolerance share); the ratio of two biases or two limits is meaningless.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import t as t_dist

from ecgaudit.metrics import katz_ratio_ci, newcombe_diff_ci, two_proportion_test
from ecgaudit.metrics._continuous import closed_form_se, metric_values
from ecgaudit.schema import CONTINUOUS_METRICS

__all__ = ["RATIO_METRICS", "continuous_contrasts"]

NAN = float("nan")
#: Metrics whose disparity rows carry a ratio.
RATIO_METRICS = frozenset({"mae", "rmse", "within_tolerance"})


def _f(x: Any) -> float:
    return float(x) if np.isfinite(x) else NAN


def _z_p(est: float, se: float) -> float:
    if not (math.isfinite(est) and math.isfinite(se)) or se <= 0:
        return NAN
    return float(2.0 * ndtr(-abs(est / se)))


def _welch(m1: float, se1: float, n1: float, m2: float, se2: float, n2: float,
           level: float) -> tuple[float, float, float]:
    se = math.sqrt(se1 * se1 + se2 * se2)
    if not math.isfinite(se) or se <= 0:
        return NAN, NAN, NAN
    df = se**4 / (se1**4 / (n1 - 1.0) + se2**4 / (n2 - 1.0))
    q = float(t_dist.ppf(0.5 + level / 2.0, df))
    diff = m1 - m2
    p = float(2.0 * t_dist.sf(abs(diff / se), df))
    return diff - q * se, diff + q * se, p


def _normal(diff: float, se: float, level: float) -> tuple[float, float]:
    if not (math.isfinite(diff) and math.isfinite(se)) or se <= 0:
        return NAN, NAN
    z = float(ndtri(0.5 + level / 2.0))
    return diff - z * se, diff + z * se


def _log_ratio(a: float, se_a: float, b: float, se_b: float,
               level: float) -> tuple[float, float, float]:
    """Ratio ``a / b`` with a log-scale delta interval; returns (low, high, se_log)."""
    if not all(math.isfinite(v) for v in (a, se_a, b, se_b)) or a <= 0 or b <= 0:
        return NAN, NAN, NAN
    se_log = math.sqrt((se_a / a) ** 2 + (se_b / b) ** 2)
    lo, hi = _normal(math.log(a / b), se_log, level)
    return (math.exp(lo) if math.isfinite(lo) else NAN,
            math.exp(hi) if math.isfinite(hi) else NAN, se_log)


def _row(metric: str) -> dict[str, Any]:
    return {"metric": metric, "difference": NAN, "difference_ci_low": NAN,
            "difference_ci_high": NAN, "ratio": NAN, "ratio_ci_low": NAN,
            "ratio_ci_high": NAN, "ci_method": "none", "test": "none", "p_value": NAN,
            "status": "ok", "reason": ""}


def _fill(row: dict[str, Any], metric: str, g: dict[str, float], r: dict[str, float],
          eg: float, er: float, level: float) -> None:
    n1, n2 = g["n"], r["n"]
    if metric in ("bias", "mae"):
        key = "se_bias" if metric == "bias" else "se_mae"
        lo, hi, p = _welch(eg, g[key], n1, er, r[key], n2, level)
        row.update(difference_ci_low=lo, difference_ci_high=hi, p_value=p, test="welch-t",
                   ci_method="welch-t")
        if metric == "mae":
            rlo, rhi, _ = _log_ratio(eg, g[key], er, r[key], level)
            row.update(ratio_ci_low=rlo, ratio_ci_high=rhi, ci_method="welch-t/log-delta")
    elif metric == "rmse":
        se_g = g["se_mse"] / (2.0 * eg) if eg > 0 else NAN
        se_r = r["se_mse"] / (2.0 * er) if er > 0 else NAN
        lo, hi = _normal(eg - er, math.sqrt(se_g**2 + se_r**2), level)
        rlo, rhi, se_log = _log_ratio(eg, se_g, er, se_r, level)
        p = _z_p(math.log(eg / er), se_log) if eg > 0 and er > 0 else NAN
        row.update(difference_ci_low=lo, difference_ci_high=hi, ratio_ci_low=rlo,
                   ratio_ci_high=rhi, ci_method="delta", test="z", p_value=p)
    elif metric in ("loa_lower", "loa_upper", "slope", "intercept"):
        key = {"loa_lower": "se_loa", "loa_upper": "se_loa", "slope": "se_slope",
               "intercept": "se_intercept"}[metric]
        se = math.sqrt(g[key] ** 2 + r[key] ** 2)
        lo, hi = _normal(eg - er, se, level)
        method = "bland-altman-approx" if metric.startswith("loa") else "wald-ols"
        row.update(difference_ci_low=lo, difference_ci_high=hi, ci_method=method, test="z",
                   p_value=_z_p(eg - er, se))
    elif metric == "within_tolerance":
        k1, k2 = round(g["stol"]), round(r["stol"])
        i1, i2 = round(n1), round(n2)
        lo, hi = newcombe_diff_ci(k1, i1, k2, i2, level)
        rlo, rhi = katz_ratio_ci(k1, i1, k2, i2, level)
        row.update(difference_ci_low=lo, difference_ci_high=hi, ratio_ci_low=rlo,
                   ratio_ci_high=rhi, ci_method="newcombe/katz", test="two-proportion-z",
                   p_value=two_proportion_test(k1, i1, k2, i2))


def _scalars(stats: np.ndarray, shift: float) -> dict[str, float]:
    se = closed_form_se(stats[None, :], shift)
    out = {k: _f(v[0]) for k, v in se.items()}
    out["n"] = float(stats[0])
    out["stol"] = float(stats[-1])
    return out


def continuous_contrasts(group: np.ndarray, reference: np.ndarray, shift: float,
                         level: float = 0.95, metrics: tuple[str, ...] = CONTINUOUS_METRICS
                         ) -> list[dict[str, Any]]:
    """Compare every continuous metric of ``group`` with ``reference``.

    Parameters
    ----------
    group, reference : ndarray, shape (len(STATS),)
        Summed sufficient statistics (:mod:`ecgaudit.metrics._continuous`) of the two
        disjoint groups.
    shift : float
        Shift used for the statistics.
    level : float
        Confidence level.
    metrics : tuple of str
        Metrics to compare (e.g. without ``within_tolerance`` when no tolerance is set).

    Returns
    -------
    list of dict
        One dict per metric with the keys of :func:`ecgaudit.disparity.compare_groups`.
    """
    eg_all = metric_values(group, shift)
    er_all = metric_values(reference, shift)
    g, r = _scalars(group, shift), _scalars(reference, shift)
    rows = []
    for metric in metrics:
        k = CONTINUOUS_METRICS.index(metric)
        eg, er = float(eg_all[k]), float(er_all[k])
        row = _row(metric)
        if not (math.isfinite(eg) and math.isfinite(er)):
            who = "group" if not math.isfinite(eg) else "reference"
            row.update(status="insufficient", reason=f"{who}: metric undefined (too few rows)")
            rows.append(row)
            continue
        row["difference"] = eg - er
        if metric in RATIO_METRICS and er != 0:
            row["ratio"] = eg / er
        _fill(row, metric, g, r, eg, er, level)
        rows.append(row)
    return rows
