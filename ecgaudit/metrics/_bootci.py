"""Bootstrap interval arithmetic: percentile and BCa limits, degenerate shares, p-values.

All functions work column-wise on a replicate array of shape ``(B, ...)`` (one replicate per
row) in which ``nan`` marks a degenerate replicate (the statistic is undefined on that
draw). Limits are computed from the non-degenerate replicates with numpy's default
(``linear``) quantile rule, vectorised over columns.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = [
    "bca_limits",
    "bootstrap_p_value",
    "degenerate_share",
    "interval_p_value",
    "jackknife_acceleration",
    "percentile_limits",
]


def degenerate_share(reps: np.ndarray) -> np.ndarray:
    """Share of replicates that are ``nan`` (degenerate), per column."""
    if reps.shape[0] == 0:
        return np.ones(reps.shape[1:])
    return np.isnan(reps).mean(axis=0)


def _quantiles(reps: np.ndarray, *qs: np.ndarray) -> list[np.ndarray]:
    """Linear-interpolation quantiles ``qs`` (each shaped as a column slice), finite values.

    The replicates are sorted once for all the quantiles asked.
    """
    s = np.sort(reps, axis=0)  # nan sorts last
    k = np.sum(~np.isnan(reps), axis=0)
    return [_quantile_sorted(s, k, q) for q in qs]


def _quantile_sorted(s: np.ndarray, k: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantile ``q`` of columns ``s`` sorted with ``nan`` last, ``k`` finite values each."""
    pos = np.asarray(q) * np.maximum(k - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(k - 1, 0))
    lo_v = np.take_along_axis(s, lo[None, ...], axis=0)[0]
    hi_v = np.take_along_axis(s, hi[None, ...], axis=0)[0]
    with np.errstate(invalid="ignore"):
        out = lo_v + (pos - lo) * (hi_v - lo_v)
    out = np.where(hi == lo, lo_v, out)
    return np.where(k > 0, out, np.nan)


def percentile_limits(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval ``[q_{(1-level)/2}, q_{(1+level)/2}]`` per column.

    Parameters
    ----------
    reps : ndarray, shape (B, ...)
        Replicates; ``nan`` = degenerate (ignored).
    level : float
        Confidence level.

    Returns
    -------
    tuple of ndarray
        Lower and upper limits (``nan`` where no replicate is finite).
    """
    shape = reps.shape[1:]
    lo, hi = _quantiles(reps, np.full(shape, (1.0 - level) / 2.0),
                        np.full(shape, (1.0 + level) / 2.0))
    return lo, hi


def jackknife_acceleration(jack: np.ndarray) -> np.ndarray:
    """BCa acceleration ``a = sum d^3 / (6 (sum d^2)^1.5)``, ``d = mean - theta_(j)``.

    Parameters
    ----------
    jack : ndarray, shape (J, ...)
        Leave-one-block-out estimates (``nan`` blocks are ignored).

    Returns
    -------
    ndarray
        Acceleration per column (0 where undefined).
    """
    finite = np.isfinite(jack)
    count = finite.sum(axis=0)
    filled = np.where(finite, jack, 0.0)
    mean = _ratio(filled.sum(axis=0), count)
    d = np.where(finite, mean - filled, 0.0)
    num = np.sum(d**3, axis=0)
    den = 6.0 * np.sum(d**2, axis=0) ** 1.5
    a = _ratio(num, den)
    return np.where(np.isfinite(a), a, 0.0)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def bca_limits(
    reps: np.ndarray, estimate: np.ndarray, accel: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected and accelerated (BCa) interval per column (Efron 1987).

    ``z0 = Phi^-1(share of finite replicates below the estimate, ties counting 1/2)``;
    the limits are the replicate quantiles at
    ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` for ``z = Phi^-1((1 -+ level) / 2)``.

    Parameters
    ----------
    reps : ndarray, shape (B, ...)
        Replicates; ``nan`` = degenerate.
    estimate : ndarray
        Point estimate per column.
    accel : ndarray
        Acceleration per column (:func:`jackknife_acceleration`).
    level : float
        Confidence level.

    Returns
    -------
    tuple of ndarray
        Lower and upper limits; ``nan`` where the estimate is undefined or every replicate
        lies strictly on one side of it (``z0`` infinite).
    """
    finite = ~np.isnan(reps)
    k = finite.sum(axis=0)
    below = np.sum(finite & (reps < estimate), axis=0)
    ties = np.sum(finite & (reps == estimate), axis=0)
    share = _ratio(below + 0.5 * ties, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        z0 = ndtri(share)
        z_lo, z_hi = ndtri((1.0 - level) / 2.0), ndtri((1.0 + level) / 2.0)
        q_lo = ndtr(z0 + (z0 + z_lo) / (1.0 - accel * (z0 + z_lo)))
        q_hi = ndtr(z0 + (z0 + z_hi) / (1.0 - accel * (z0 + z_hi)))
    ok = np.isfinite(z0) & np.isfinite(estimate) & np.isfinite(q_lo) & np.isfinite(q_hi)
    lo, hi = _quantiles(reps, np.where(ok, q_lo, 0.0), np.where(ok, q_hi, 1.0))
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def bootstrap_p_value(diff: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value for ``difference == 0`` per column.

    ``p = min(1, 2 (1 + min(#{d <= 0}, #{d >= 0})) / (k + 1))`` over the ``k`` finite
    replicates: the smallest level at which the percentile interval excludes 0, with the
    usual ``+1`` correction so that it is never exactly 0.

    Parameters
    ----------
    diff : ndarray, shape (B, ...)
        Replicates of a difference; ``nan`` = degenerate.

    Returns
    -------
    ndarray
        p-values (``nan`` where no replicate is finite).
    """
    finite = ~np.isnan(diff)
    k = finite.sum(axis=0)
    le = np.sum(finite & (diff <= 0), axis=0)
    ge = np.sum(finite & (diff >= 0), axis=0)
    p = np.minimum(1.0, 2.0 * (1.0 + np.minimum(le, ge)) / (k + 1.0))
    return np.where(k > 0, p, np.nan)


def _crossings(diff: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where the linear quantile curve of every column meets 0, as shares in ``[0, 1]``.

    Returns ``(g_hi, g_lo, k)``: ``g_hi = sup{q: Q(q) <= 0}`` and ``g_lo = inf{q: Q(q) >= 0}``
    (``-inf`` / ``+inf`` when the curve never gets there) and the finite count ``k``.
    """
    s = np.sort(diff, axis=0)  # nan last
    k = np.sum(~np.isnan(diff), axis=0)
    width = np.maximum(k - 1, 1).astype(np.float64)
    with np.errstate(invalid="ignore"):
        le = np.sum(s <= 0, axis=0)  # nan compares False
        lt = np.sum(s < 0, axis=0)
    last = k - 1

    def at(i: np.ndarray) -> np.ndarray:
        return np.take_along_axis(s, np.clip(i, 0, s.shape[0] - 1)[None, ...], axis=0)[0]

    j = le - 1
    sj, sj1 = at(j), at(j + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_hi = np.where(j < 0, -np.inf,
                        np.where(j >= last, last, j + np.nan_to_num(-sj / (sj1 - sj))))
        i = lt
        si0, si = at(i - 1), at(i)
        t_lo = np.where(i >= k, np.inf,
                        np.where(i <= 0, 0.0, (i - 1) + np.nan_to_num(-si0 / (si - si0))))
    return t_hi / width, t_lo / width, k


def interval_p_value(diff: np.ndarray, estimate: np.ndarray | None = None,
                     accel: np.ndarray | None = None, *, point: np.ndarray | None = None,
                     tail: float = 0.0) -> np.ndarray:
    """Two-sided bootstrap p-value of ``difference = 0`` that agrees with the interval.

    The p-value is the smallest ``alpha`` at which the ``1 - alpha`` percentile interval
    (with ``estimate`` and ``accel``: the BCa interval) of the same replicates excludes 0,
    so a row's interval excludes 0 at the reported level exactly when ``p < 1 - level``.

    Replicates cannot resolve p-values far in the tail (with ``B = 1000``, a p of 1e-3
    means "no replicate beyond 0"), yet a multiplicity correction over hundreds of tests
    needs them. Where the inverted p is below ``tail`` (and ``point`` is given), the
    p-value is the normal approximation ``2 Phi(-|point| / se)`` with the replicates'
    standard error ``se``, capped just below ``tail``; with ``tail <= 1 - level`` this
    keeps the agreement with the interval. Without ``point`` the p-value is floored at
    ``1 / (k + 1)``.

    Parameters
    ----------
    diff : ndarray, shape (B, ...)
        Replicates of a difference; ``nan`` = degenerate.
    estimate : ndarray, optional
        Point estimate per column (BCa's bias correction).
    accel : ndarray, optional
        BCa acceleration per column.
    point : ndarray, optional
        Point estimate of the difference per column (for the normal tail).
    tail : float
        Below this inverted p-value the normal tail is used.

    Returns
    -------
    ndarray
        p-values (``nan`` where no replicate is finite).
    """
    g_hi, g_lo, k = _crossings(diff)
    if estimate is None:
        p_lo, p_hi = 2.0 * g_hi, 2.0 * (1.0 - g_lo)
    else:
        finite = ~np.isnan(diff)
        below = np.sum(finite & (diff < estimate), axis=0)
        ties = np.sum(finite & (diff == estimate), axis=0)
        a = np.zeros(k.shape) if accel is None else accel
        with np.errstate(divide="ignore", invalid="ignore"):
            z0 = ndtri(_ratio(below + 0.5 * ties, k))

            def side(g: np.ndarray) -> np.ndarray:
                w = ndtri(np.clip(g, 0.0, 1.0)) - z0
                z = w / (1.0 + a * w) - z0
                return np.where(g <= 0, -np.inf, np.where(g >= 1, np.inf, z))

            p_lo = 2.0 * ndtr(side(g_hi))
            p_hi = 2.0 * (1.0 - ndtr(side(g_lo)))
    p = np.nan_to_num(np.minimum(p_lo, p_hi), nan=1.0, posinf=1.0, neginf=0.0)
    p = np.clip(p, 0.0, 1.0)
    if point is not None and tail > 0:
        finite = ~np.isnan(diff)
        filled = np.where(finite, diff, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = filled.sum(axis=0) / k
            var = np.where(finite, (filled - mean) ** 2, 0.0).sum(axis=0) / (k - 1.0)
            normal = 2.0 * ndtr(-np.abs(point) / np.sqrt(var))
        normal = np.where(np.isfinite(normal), normal, 0.0)
        p = np.where(p < tail, np.minimum(normal, np.nextafter(tail, 0.0)), p)
    else:
        p = np.maximum(p, 1.0 / (k + 1.0))
    return np.where(k > 0, p, np.nan)
