"""Every metric of every group from integer row weights, by cumulative sums over sorted cells.

:func:`replicate_metrics` takes a matrix of row weights (one bootstrap replicate per row;
a weight is how often a row was drawn, all ones for the point estimate) and returns the
metrics of :data:`ecgaudit.schema.METRICS` for every group of one grouping. A replicate is
therefore computed exactly as the row-level definition on the expanded multiset (each row
repeated ``weight`` times): integer cumulative sums give AUROC (ties count 1/2), the
confusion counts at the frozen threshold, n and events; floating cumulative sums give
Brier, O/E, AUPRC and ECE; calibration intercept/slope come from vectorised weighted Newton
steps (all replicates and groups at once) under the rules of :mod:`ecgaudit.metrics._newton`.
:func:`replicate_stats` returns these as the sufficient statistics of
:mod:`ecgaudit.metrics._suffstats`, whose ``assemble`` forms the metrics (as for every engine).

ECE on a weighted replicate: the expanded multiset sorted by score and label (the copies of
one row are adjacent) is cut into ``ece_bins`` equal-mass bins exactly as
``numpy.array_split`` cuts ``n`` items (:func:`ecgaudit.metrics._ecebins.edge`). A row
whose copies straddle a bin edge contributes the matching number of copies to each side.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from ecgaudit.metrics import _ecebins, _newton
from ecgaudit.metrics._calibration import calibration_logit
from ecgaudit.metrics._cells import SortedCells
from ecgaudit.metrics._compile import plain
from ecgaudit.metrics._suffstats import (
    F_AP,
    F_CAL_A,
    F_CAL_B,
    F_DL01,
    F_DL10,
    F_ECE,
    F_SQ,
    F_SUM_P,
    I_FLAGGED,
    I_N,
    I_POS,
    I_TP,
    I_U2,
    SuffStats,
    assemble,
    fill_rates,
    ratio,
)
from ecgaudit.schema import METRICS

__all__ = ["METRIC_INDEX", "fill_rates", "ratio", "replicate_metrics", "replicate_stats"]

#: Position of each metric id along the metric axis of :func:`replicate_metrics`.
METRIC_INDEX: dict[str, int] = {m: i for i, m in enumerate(METRICS)}

_edge = plain(_ecebins.edge)  # ECE's equal-mass bins
# The recalibration fit's rules (:mod:`ecgaudit.metrics._newton`), applied to arrays.
_accepts, _converged, _direction, _diverged, _is_final, _step_size = (
    plain(f) for f in (_newton.accepts, _newton.converged, _newton.direction,
                       _newton.diverged, _newton.is_final, _newton.step_size))


def _cumsum0(a: np.ndarray) -> np.ndarray:
    """Cumulative sum along axis 1 with a leading zero column."""
    out = np.zeros((a.shape[0], a.shape[1] + 1), dtype=np.result_type(a.dtype, np.int64))
    np.cumsum(a, axis=1, out=out[:, 1:])
    return out


def _segsum(a: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Sum ``a`` (R, n) over the column segments ``bounds[g]:bounds[g+1]`` (empty -> 0)."""
    n_seg = bounds.size - 1
    out = np.zeros((a.shape[0], n_seg), dtype=a.dtype)
    nonempty = np.flatnonzero(bounds[1:] > bounds[:-1])
    if nonempty.size:
        out[:, nonempty] = np.add.reduceat(a, bounds[nonempty], axis=1)
    return out


def _locate(cum: np.ndarray, values: np.ndarray, side: str) -> np.ndarray:
    """Row-wise ``searchsorted(cum[r], values[r], side) - 1`` clipped to ``[0, n-1]``.

    ``cum`` (R, n+1) is non-decreasing along each row; ``values`` is (R, k).
    """
    r, width = cum.shape
    span = int(cum[:, -1].max()) + 1 if cum.size else 1
    offset = (np.arange(r, dtype=np.int64) * span)[:, None]
    flat = (cum + offset).ravel()
    pos = np.searchsorted(flat, (values + offset).ravel(), side=side).reshape(values.shape)
    pos = pos - 1 - np.arange(r, dtype=np.int64)[:, None] * width
    return np.clip(pos, 0, max(width - 2, 0))


def _ece(cells: SortedCells, cw: np.ndarray, cy: np.ndarray, cp: np.ndarray,
         n_g: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-mass-bin ECE numerator of every group (see the module docstring)."""
    gb = cells.group_bounds
    if cells.y.size == 0:
        return np.zeros(n_g.shape)  # no rows: n = 0, assemble gives nan
    k = np.arange(n_bins + 1, dtype=np.int64)
    q, rem = np.divmod(n_g, n_bins)
    edges = _edge(k, q[:, :, None], rem[:, :, None])  # (R, G, B+1)
    pos = cw[:, gb[:-1]][:, :, None] + edges
    r, g, b1 = pos.shape
    flat_pos = pos.reshape(r, g * b1)
    j = _locate(cw, flat_pos, "right")
    rows = np.arange(r)[:, None]
    part = flat_pos - cw[rows, j]
    ysum = cy[rows, j] + part * cells.y[j]
    psum = cp[rows, j] + part * cells.p[j]
    dy = np.diff(ysum.reshape(r, g, b1), axis=2)
    dp = np.diff(psum.reshape(r, g, b1), axis=2)
    return np.abs(dy - dp).sum(axis=2)


def _overlap(cells: SortedCells, cw: np.ndarray, cy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Whether the drawn positives and negatives of each group overlap in logit score.

    A one-covariate logistic fit has a finite maximum-likelihood estimate only if some
    negative scores above some positive and vice versa; otherwise the classes are
    (quasi-)completely separated and the recalibration fit is undefined.
    """
    gb = cells.group_bounds
    if x.size == 0:
        return np.zeros((cw.shape[0], gb.size - 1), dtype=bool)
    cn = cw - cy
    first_pos = _locate(cy, cy[:, gb[:-1]], "right")
    last_pos = _locate(cy, cy[:, gb[1:]], "left")
    first_neg = _locate(cn, cn[:, gb[:-1]], "right")
    last_neg = _locate(cn, cn[:, gb[1:]], "left")
    return (x[last_neg] > x[first_pos]) & (x[last_pos] > x[first_neg])


def _eta(a: np.ndarray, b: np.ndarray, x: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    return np.repeat(a, sizes, axis=1) + np.repeat(b, sizes, axis=1) * x


def _loglik(wf: np.ndarray, wy: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray,
            gb: np.ndarray) -> np.ndarray:
    """Weighted Bernoulli log-likelihood of every (replicate, group)."""
    eta = _eta(a, b, x, np.diff(gb))
    return _segsum(wy * eta - wf * np.logaddexp(0.0, eta), gb)


def _newton_terms(wf: np.ndarray, wy: np.ndarray, x: np.ndarray, a: np.ndarray,
                  b: np.ndarray, gb: np.ndarray) -> tuple[np.ndarray, ...]:
    """Gradient and Hessian entries of every (replicate, group)."""
    mu = expit(_eta(a, b, x, np.diff(gb)))
    resid = wy - wf * mu
    v = wf * (mu * (1.0 - mu))
    vx = v * x
    return (_segsum(resid, gb), _segsum(resid * x, gb), _segsum(v, gb), _segsum(vx, gb),
            _segsum(vx * x, gb))


def _calibration_fit(cells: SortedCells, ws: np.ndarray, active: np.ndarray,
                     x: np.ndarray, start: tuple[np.ndarray, np.ndarray] | None,
                     prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logistic recalibration of every (replicate, group) by damped Newton steps.

    Plain Newton can overshoot when saturated scores give extreme logits. Whenever some
    proposed step is large (> ``_GUARD``), the log-likelihood is checked and steps that
    lower it are halved (up to 40 times); this makes every fit converge to the
    maximum-likelihood estimate whenever it exists (``active``). Small steps near the
    optimum are taken without the check (Newton is then monotone in practice), which
    saves a likelihood evaluation per iteration.
    """
    gb = cells.group_bounds
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(active, logit(np.clip(prev, 1e-12, 1 - 1e-12)), 0.0)
    b = np.zeros_like(a)
    if start is not None:
        ok = np.isfinite(start[0]) & np.isfinite(start[1])
        a = np.where(ok[None, :] & active, start[0][None, :], a)
        b = np.where(ok[None, :] & active, start[1][None, :], b)
    wf = ws.astype(np.float64)
    wy = wf * cells.y
    done = ~active
    failed = np.zeros_like(active)
    ga, gx, haa, hab, hbb = _newton_terms(wf, wy, x, a, b, gb)
    for _ in range(_newton.MAX_ITER):
        det = haa * hbb - hab * hab
        live = ~done & (det > 0)
        failed |= ~done & ~(det > 0)
        with np.errstate(all="ignore"):
            da, db = _direction(ga, gx, haa, hab, hbb, np.where(live, det, 1.0))
        da = np.where(live, np.nan_to_num(da), 0.0)
        db = np.where(live, np.nan_to_num(db), 0.0)
        step = _step_size(da, db)
        if not (live & ~_is_final(da, db, a, b)).any():
            # Quadratic convergence: after a step this small the error is ~step^2 < tol.
            a, b = a + da, b + db
            done |= live
            break
        t = np.ones_like(a)
        if (live & (step > _newton.GUARD)).any():
            ll = _loglik(wf, wy, x, a, b, gb)
            for _halving in range(_newton.HALVINGS):
                new = _loglik(wf, wy, x, a + t * da, b + t * db, gb)
                worse = live & ~_accepts(new, ll)
                if not worse.any():
                    break
                t = np.where(worse, t / 2.0, t)
        a, b = a + t * da, b + t * db
        failed |= live & _diverged(a, b)
        done |= failed | (live & _converged(t * step, a, b))
        if done.all():
            break
        ga, gx, haa, hab, hbb = _newton_terms(wf, wy, x, a, b, gb)
    bad = ~active | failed | ~done
    return np.where(bad, np.nan, a), np.where(bad, np.nan, b)


def replicate_metrics(
    cells: SortedCells,
    weights: np.ndarray,
    *,
    ece_bins: int = 10,
    clip: float = 0.0,
    cal_start: tuple[np.ndarray, np.ndarray] | None = None,
    skip: frozenset[str] = frozenset(),
) -> np.ndarray:
    """Compute every metric of every group for a batch of weight vectors.

    Parameters
    ----------
    cells : SortedCells
        The task sorted within the groups of one grouping.
    weights : ndarray of int, shape (R, n)
        Non-negative integer row weights in *row* order, one replicate per row.
    ece_bins : int
        Number of equal-mass ECE bins.
    clip : float
        Score clip before the logit of the recalibration fit.
    cal_start : tuple of ndarray, optional
        Starting intercept and slope per group for Newton's method (e.g. the point
        estimates); the converged result does not depend on it.
    skip : frozenset of str
        Metrics not needed (``"ece"``, ``"cal_intercept"``/``"cal_slope"``): left ``nan``
        and not computed (the recalibration fit is most of the cost).

    Returns
    -------
    ndarray of float64, shape (R, len(METRICS), G)
        Metric values; ``nan`` where a metric is undefined in that replicate.
    """
    return assemble(replicate_stats(cells, weights, ece_bins=ece_bins, clip=clip,
                                    cal_start=cal_start, skip=skip))[:, :len(METRICS)]


def replicate_stats(
    cells: SortedCells,
    weights: np.ndarray,
    *,
    ece_bins: int = 10,
    clip: float = 0.0,
    cal_start: tuple[np.ndarray, np.ndarray] | None = None,
    skip: frozenset[str] = frozenset(),
) -> SuffStats:
    """Compute the sufficient statistics of :func:`replicate_metrics` (same parameters).

    Returns
    -------
    SuffStats
        Fields of :mod:`ecgaudit.metrics._suffstats` per (replicate, group); the ranking
        fields stay 0 and the DeLong sums ``nan`` (not computed by this engine).
    """
    ws = np.asarray(weights)[:, cells.order].astype(np.int64)
    y = cells.y.astype(np.int64)
    gb = cells.group_bounds
    g_lo, g_hi = gb[:-1], gb[1:]
    cw = _cumsum0(ws)
    cy = _cumsum0(ws * y)
    cp = _cumsum0(ws * cells.p)
    cb = _cumsum0(ws * (cells.p - y) ** 2)
    stats = SuffStats.zeros(ws.shape[0], n_slots=gb.size - 1)
    ist, fst = stats.ints, stats.floats
    n_g = cw[:, g_hi] - cw[:, g_lo]
    pos = cy[:, g_hi] - cy[:, g_lo]
    ist[:, I_N], ist[:, I_POS] = n_g, pos
    fst[:, F_SUM_P] = cp[:, g_hi] - cp[:, g_lo]
    fst[:, F_SQ] = cb[:, g_hi] - cb[:, g_lo]
    # Confusion counts at the frozen threshold: flagged rows are a suffix of each group.
    fs = cells.flag_start
    ist[:, I_TP] = cy[:, g_hi] - cy[:, fs]
    ist[:, I_FLAGGED] = cw[:, g_hi] - cw[:, fs]
    # AUROC over tie runs, in exact integer arithmetic: 2U = sum pos_r (2 below_r + neg_r).
    rs, re = cells.run_starts, cells.run_ends
    run_counts = np.diff(cells.run_bounds)

    def at_start(c: np.ndarray) -> np.ndarray:  # value of a cumsum at each run's start
        return c[:, rs] if cells.has_ties else c[:, :-1]

    def at_end(c: np.ndarray) -> np.ndarray:
        return c[:, re] if cells.has_ties else c[:, 1:]

    def per_run(vals: np.ndarray) -> np.ndarray:  # (R, G) group value repeated per run
        return np.repeat(vals, run_counts, axis=1)

    cn = cw - cy
    cy_s, cw_s, cn_s = at_start(cy), at_start(cw), at_start(cn)
    pos_r = at_end(cy) - cy_s
    neg_r = at_end(cn) - cn_s
    below_r = cn_s - per_run(cn[:, g_lo])
    ist[:, I_U2] = _segsum(pos_r * (2 * below_r + neg_r), cells.run_bounds)
    # AUPRC (step-wise average precision): precision at each distinct score, from the top.
    tp_top = per_run(cy[:, g_hi]) - cy_s
    all_top = per_run(cw[:, g_hi]) - cw_s
    prec = np.nan_to_num(ratio(tp_top, all_top))
    fst[:, F_AP] = _segsum(pos_r * prec, cells.run_bounds)
    fst[:, F_DL10] = fst[:, F_DL01] = np.nan
    fst[:, F_ECE] = np.nan if "ece" in skip else _ece(cells, cw, cy, cp, n_g, ece_bins)
    fst[:, F_CAL_A] = fst[:, F_CAL_B] = np.nan
    if {"cal_intercept", "cal_slope"} <= skip:
        return stats
    x = calibration_logit(cells.p, clip) if cells.x is None else cells.x
    active = (pos > 0) & (n_g - pos > 0) & _overlap(cells, cw, cy, x)
    fst[:, F_CAL_A], fst[:, F_CAL_B] = _calibration_fit(cells, ws, active, x, cal_start,
                                                        ratio(pos, n_g))
    return stats
