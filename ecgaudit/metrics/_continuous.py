"""Continuous outcomes: agreement metrics of a predicted number with the measured one.

Every metric of a group is a function of nine per-group *sufficient statistics* (sums over
the group's rows of ``1, x, y, x^2, y^2, xy, |d|, d^4`` and the within-tolerance count,
with ``x`` the predicted and ``y`` the measured value, both shifted by one constant ``c``,
and ``d = x - y``). Point estimates and bootstrap replicates (weighted sums of the same
statistics, :mod:`ecgaudit.metrics._contboot`) therefore share one formula:
:func:`metric_values`.

:data:`CONTINUOUS_METRIC_SPECS` is the engine's view (name, label, definition, direction,
what it needs, closed-form interval, disparity contrast, reference) of the declarations in
the metric registry (:mod:`ecgaudit.registry`, ``_continuous.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from scipy.stats import t as t_dist

from ecgaudit.registry import REGISTRY
from ecgaudit.schema import CONTINUOUS_METRICS

__all__ = [
    "CONTINUOUS_METRIC_SPECS",
    "LOA_Z",
    "MIN_STABLE_N",
    "STATS",
    "ContinuousMetricSpec",
    "closed_form_intervals",
    "metric_values",
    "sufficient_stats",
]

#: Sufficient statistics, in array order (sums over a group's rows).
STATS = ("n", "sx", "sy", "sxx", "syy", "sxy", "sad", "sd4", "stol")
_N, _SX, _SY, _SXX, _SYY, _SXY, _SAD, _SD4, _STOL = range(len(STATS))

#: Bland-Altman limits of agreement: bias -/+ LOA_Z standard deviations of the differences.
LOA_Z = 1.96
#: Groups with fewer rows are reported with status ``unstable`` (normal-theory intervals).
MIN_STABLE_N = 30


@dataclass(frozen=True)
class ContinuousMetricSpec:
    """Declarative description of one continuous metric.

    Attributes
    ----------
    name, label, definition : str
        Identifier (``metrics.csv``), display label, formula in words.
    direction : str
        ``"lower"`` (lower is better), ``"higher"``, or ``"target:<value>"`` (closer to the
        value is better).
    needs : tuple of str
        Inputs beyond measured and predicted values (``"tolerance"``).
    min_n : int
        Fewest rows with which the metric is defined.
    interval : str
        The ``ci_method`` of the closed-form interval (``"bootstrap"``: none without B).
    contrast : str
        Disparity contrast reported first: ``"difference"`` or ``"ratio"``.
    reference : str
        The independent implementation the tests compare with.
    """

    name: str
    label: str
    definition: str
    direction: str
    needs: tuple[str, ...]
    min_n: int
    interval: str
    contrast: str
    reference: str


CONTINUOUS_METRIC_SPECS: tuple[ContinuousMetricSpec, ...] = tuple(
    ContinuousMetricSpec(
        s.name, s.label, s.definition,
        f"target:{s.target:g}" if s.direction == "target" else s.direction,
        tuple(k for k in s.needs if k != "rows"), s.extra["min_n"], s.extra["interval"],
        s.extra["contrast"], s.reference_name)
    for s in REGISTRY.select("continuous"))

assert tuple(s.name for s in CONTINUOUS_METRIC_SPECS) == CONTINUOUS_METRICS


def sufficient_stats(measured: np.ndarray, predicted: np.ndarray, tolerance: float | None,
                     shift: float) -> np.ndarray:
    """Per-row statistics, shape ``(n_rows, len(STATS))``; sums over rows give a group's.

    Parameters
    ----------
    measured, predicted : ndarray of float
        Measured (``y``) and predicted (``x``) values.
    tolerance : float, optional
        Clinical tolerance on ``|x - y|`` (the within count is 0 when not given).
    shift : float
        Constant subtracted from both values before squaring (numerical conditioning;
        the metrics are shift-invariant, the intercept is shifted back).

    Returns
    -------
    ndarray of float64
    """
    y = np.asarray(measured, dtype=np.float64) - shift
    x = np.asarray(predicted, dtype=np.float64) - shift
    d = x - y
    ad = np.abs(d)
    within = ad <= tolerance if tolerance is not None else np.zeros(x.size, dtype=bool)
    return np.column_stack([np.ones_like(x), x, y, x * x, y * y, x * y, ad, (d * d) ** 2,
                            within.astype(np.float64)])


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _moments(s: np.ndarray) -> dict[str, np.ndarray]:
    n = s[..., _N]
    mx, my = _div(s[..., _SX], n), _div(s[..., _SY], n)
    sxx = np.maximum(s[..., _SXX] - n * mx * mx, 0.0)
    syy = np.maximum(s[..., _SYY] - n * my * my, 0.0)
    sxy = s[..., _SXY] - n * mx * my
    sdd_raw = s[..., _SXX] - 2.0 * s[..., _SXY] + s[..., _SYY]
    bias = mx - my
    sdd = np.maximum(sxx - 2.0 * sxy + syy, 0.0)  # centred sum of squared d
    return {"n": n, "mx": mx, "my": my, "sxx": sxx, "syy": syy, "sxy": sxy, "bias": bias,
            "sdd_raw": np.maximum(sdd_raw, 0.0), "sdd": sdd}


def metric_values(stats: np.ndarray, shift: float) -> np.ndarray:
    """Every metric from summed statistics, vectorised over leading axes.

    Parameters
    ----------
    stats : ndarray, shape (..., len(STATS))
        Summed statistics of one or more groups (or replicates).
    shift : float
        The shift used by :func:`sufficient_stats`.

    Returns
    -------
    ndarray, shape (..., len(CONTINUOUS_METRICS))
        ``nan`` where a metric is undefined (too few rows, constant predictions, ...).
    """
    m = _moments(stats)
    n = m["n"]
    var_d = _div(m["sdd"], n - 1.0)
    sd_d = np.sqrt(var_d)
    slope = _div(m["sxy"], m["sxx"])
    intercept = (m["my"] + shift) - slope * (m["mx"] + shift)
    ok3 = n >= 3
    out = np.stack([
        np.where(n >= 2, m["bias"], np.nan),
        np.where(n >= 2, _div(stats[..., _SAD], n), np.nan),
        np.where(n >= 2, np.sqrt(_div(m["sdd_raw"], n)), np.nan),
        np.where(ok3, m["bias"] - LOA_Z * sd_d, np.nan),
        np.where(ok3, m["bias"] + LOA_Z * sd_d, np.nan),
        np.where(ok3, slope, np.nan),
        np.where(ok3, intercept, np.nan),
        np.where(n >= 2, 1.0 - _div(m["sdd_raw"], m["syy"]), np.nan),
        _div(stats[..., _STOL], n),
    ], axis=-1)
    return out


def _t(level: float, df: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(df > 0, t_dist.ppf(0.5 + level / 2.0, np.maximum(df, 1.0)), np.nan)


def _wilson(k: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    z = float(ndtri(0.5 + level / 2.0))
    p = _div(k, n)
    denom = 1.0 + _div(np.full_like(n, z * z), n)
    centre = _div(p + _div(np.full_like(n, z * z), 2.0 * n), denom)
    with np.errstate(invalid="ignore"):
        half = z * np.sqrt(np.maximum(_div(p * (1 - p), n) + _div(np.full_like(n, z * z),
                                                                  4.0 * n * n), 0)) / denom
    return np.maximum(0.0, centre - half), np.minimum(1.0, centre + half)


def closed_form_se(stats: np.ndarray, shift: float) -> dict[str, np.ndarray]:
    """Return the standard errors (and degrees of freedom) behind the closed-form intervals.

    Returns
    -------
    dict
        ``se_<metric>`` and ``df_<metric>`` arrays (``nan`` where undefined).
    """
    m = _moments(stats)
    n = m["n"]
    est = metric_values(stats, shift)
    var_d = _div(m["sdd"], n - 1.0)
    mae = est[..., 1]
    var_abs = _div(np.maximum(m["sdd_raw"] - n * mae * mae, 0.0), n - 1.0)
    mse = _div(m["sdd_raw"], n)
    var_sq = _div(np.maximum(stats[..., _SD4] - n * mse * mse, 0.0), n - 1.0)
    slope = _div(m["sxy"], m["sxx"])
    resid = _div(np.maximum(m["syy"] - slope * m["sxy"], 0.0), n - 2.0)
    mx = m["mx"] + shift
    return {
        "se_bias": np.sqrt(_div(var_d, n)), "df": n - 1.0,
        "se_mae": np.sqrt(_div(var_abs, n)),
        "se_mse": np.sqrt(_div(var_sq, n)), "mse": mse,
        "se_loa": np.sqrt(var_d * (_div(np.ones_like(n), n)
                                   + _div(np.full_like(n, LOA_Z**2), 2.0 * (n - 1.0)))),
        "se_slope": np.sqrt(_div(resid, m["sxx"])),
        "se_intercept": np.sqrt(resid * (_div(np.ones_like(n), n) + _div(mx * mx, m["sxx"]))),
        "df_ols": n - 2.0,
    }


def closed_form_intervals(stats: np.ndarray, shift: float, level: float
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimates with closed-form intervals, vectorised over groups.

    * ``bias``: t interval ``mean d +/- t_{n-1} s/sqrt(n)``.
    * ``mae``: t interval on the mean of ``|d|``.
    * ``rmse``: t interval on the mean of ``d^2`` (the MSE), square-rooted (lower limit
      floored at 0).
    * ``loa_lower`` / ``loa_upper``: Bland & Altman's (1999) approximate interval
      ``LoA +/- t_{n-1} s sqrt(1/n + 1.96^2 / (2 (n - 1)))``.
    * ``slope`` / ``intercept``: OLS t intervals (``n - 2`` degrees of freedom).
    * ``within_tolerance``: Wilson score interval.
    * ``r2``: none (bootstrap only).

    Parameters
    ----------
    stats : ndarray, shape (G, len(STATS))
        Summed statistics per group.
    shift : float
        Shift used for the statistics.
    level : float
        Confidence level.

    Returns
    -------
    tuple of ndarray, each of shape (G, len(CONTINUOUS_METRICS))
        Estimates, lower and upper limits.
    """
    est = metric_values(stats, shift)
    se = closed_form_se(stats, shift)
    t1 = _t(level, se["df"])
    t2 = _t(level, se["df_ols"])
    lo = np.full_like(est, np.nan)
    hi = np.full_like(est, np.nan)
    half = {0: t1 * se["se_bias"], 1: t1 * se["se_mae"], 3: t1 * se["se_loa"],
            4: t1 * se["se_loa"], 5: t2 * se["se_slope"], 6: t2 * se["se_intercept"]}
    for k, h in half.items():
        lo[:, k] = est[:, k] - h
        hi[:, k] = est[:, k] + h
    mse_half = t1 * se["se_mse"]
    with np.errstate(invalid="ignore"):
        lo[:, 2] = np.sqrt(np.maximum(se["mse"] - mse_half, 0.0))
        hi[:, 2] = np.sqrt(se["mse"] + mse_half)
    lo[:, 8], hi[:, 8] = _wilson(stats[:, _STOL], stats[:, _N], level)
    undefined = np.isnan(est)
    lo[undefined] = np.nan
    hi[undefined] = np.nan
    return est, lo, hi
