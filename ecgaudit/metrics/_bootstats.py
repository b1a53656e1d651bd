"""Every metric of every group from integer row weights, by cumulative sums over sorted cells.

:func:`replicate_metrics` takes a matrix of row weights (one bootstrap replicate per row;
a weight is how often a row was drawn, all ones for the point estimate) and returns the
metrics of :data:`ecgaudit.schema.METRICS` for every group of one grouping. A replicate is
therefore computed exactly as the row-level definition on the expanded multiset (each row
repeated ``weight`` times): integer cumulative sums give AUROC (ties count 1/2), the
confusion counts at the frozen threshold, n and events; floating cumulative sums give
Brier, O/E, AUPRC and ECE; calibration intercept/slope come from vectorised weighted Newton
steps (all replicates and groups at once).

ECE on a weighted replicate: the expanded multiset sorted by score and label (the copies of
one row are adjacent) is cut into ``ece_bins`` equal-mass bins exactly as
``numpy.array_split`` cuts ``n`` items (the first ``n % bins`` bins hold one more). A row
whose copies straddle a bin edge contributes the matching number of copies to each side.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from ecgaudit.metrics._calibration import calibration_logit
from ecgaudit.metrics._cells import SortedCells
from ecgaudit.schema import METRICS

__all__ = ["METRIC_INDEX", "fill_rates", "ratio", "replicate_metrics"]

#: Position of each metric id along the metric axis of :func:`replicate_metrics`.
METRIC_INDEX: dict[str, int] = {m: i for i, m in enumerate(METRICS)}

_MAX_ITER = 100
_TOL = 1e-10
_FINAL = 1e-5  # a Newton step this small leaves an error of order step**2 ~ 1e-10
_GUARD = 0.5
_DIVERGED = 1e6


def _cumsum0(a: np.ndarray) -> np.ndarray:
    """Cumulative sum along axis 1 with a leading zero column."""
    out = np.zeros((a.shape[0], a.shape[1] + 1), dtype=np.result_type(a.dtype, np.int64))
    np.cumsum(a, axis=1, out=out[:, 1:])
    return out


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with ``nan`` where ``den <= 0`` (no warnings)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def fill_rates(out: np.ndarray, idx: dict[str, int], n: np.ndarray, pos: np.ndarray,
               tp: np.ndarray, flagged: np.ndarray) -> None:
    """Write the seven threshold rates from n, positives, true positives and flagged rows."""
    neg = n - pos
    fp = flagged - tp
    tn = neg - fp
    out[:, idx["sensitivity"]] = ratio(tp, pos)
    out[:, idx["specificity"]] = ratio(tn, neg)
    out[:, idx["ppv"]] = ratio(tp, flagged)
    out[:, idx["npv"]] = ratio(tn, n - flagged)
    out[:, idx["fnr"]] = ratio(pos - tp, pos)
    out[:, idx["fpr"]] = ratio(fp, neg)
    out[:, idx["flag_rate"]] = ratio(flagged, n)


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
    """Equal-mass-bin ECE of every group (see the module docstring)."""
    gb = cells.group_bounds
    if cells.y.size == 0:
        return np.full(n_g.shape, np.nan)
    k = np.arange(n_bins + 1, dtype=np.int64)
    q, rem = np.divmod(n_g, n_bins)
    edges = k * q[:, :, None] + np.minimum(k, rem[:, :, None])  # (R, G, B+1)
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
    return ratio(np.abs(dy - dp).sum(axis=2), n_g)


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
    for _ in range(_MAX_ITER):
        det = haa * hbb - hab * hab
        live = ~done & (det > 0)
        failed |= ~done & ~(det > 0)
        den = np.where(live, det, 0.0)
        da = np.where(live, np.nan_to_num(ratio(hbb * ga - hab * gx, den)), 0.0)
        db = np.where(live, np.nan_to_num(ratio(haa * gx - hab * ga, den)), 0.0)
        step = np.maximum(np.abs(da), np.abs(db))
        big = np.maximum(np.abs(a + da), np.abs(b + db))
        if not (live & ~(step < _FINAL * (1.0 + big))).any():
            # Quadratic convergence: after a step this small the error is ~step^2 < tol.
            a, b = a + da, b + db
            done |= live
            break
        t = np.ones_like(a)
        if (live & (step > _GUARD)).any():
            ll = _loglik(wf, wy, x, a, b, gb)
            for _halving in range(40):
                new = _loglik(wf, wy, x, a + t * da, b + t * db, gb)
                worse = live & ~(new >= ll - 1e-12 * np.abs(ll))
                if not worse.any():
                    break
                t = np.where(worse, t / 2.0, t)
        a, b = a + t * da, b + t * db
        big = np.maximum(np.abs(a), np.abs(b))
        failed |= live & ~(big < _DIVERGED)
        step = t * step
        done |= failed | (live & (step < _TOL * (1.0 + big)))
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
    ws = np.asarray(weights)[:, cells.order].astype(np.int64)
    y = cells.y.astype(np.int64)
    gb = cells.group_bounds
    g_lo, g_hi = gb[:-1], gb[1:]
    cw = _cumsum0(ws)
    cy = _cumsum0(ws * y)
    cp = _cumsum0(ws * cells.p)
    cb = _cumsum0(ws * (cells.p - y) ** 2)
    n_g = cw[:, g_hi] - cw[:, g_lo]
    pos = cy[:, g_hi] - cy[:, g_lo]
    neg = n_g - pos
    sum_p = cp[:, g_hi] - cp[:, g_lo]
    out = np.full((ws.shape[0], len(METRICS), gb.size - 1), np.nan)
    idx = METRIC_INDEX
    out[:, idx["brier"]] = ratio(cb[:, g_hi] - cb[:, g_lo], n_g)
    out[:, idx["oe_ratio"]] = ratio(pos, sum_p)
    # Confusion counts at the frozen threshold: flagged rows are a suffix of each group.
    fs = cells.flag_start
    tp = cy[:, g_hi] - cy[:, fs]
    flagged = cw[:, g_hi] - cw[:, fs]
    fill_rates(out, idx, n_g, pos, tp, flagged)
    both = (pos > 0) & (neg > 0)
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
    u2 = _segsum(pos_r * (2 * below_r + neg_r), cells.run_bounds)
    out[:, idx["auroc"]] = np.where(both, ratio(u2, 2 * pos * neg), np.nan)
    # AUPRC (step-wise average precision): precision at each distinct score, from the top.
    tp_top = per_run(cy[:, g_hi]) - cy_s
    all_top = per_run(cw[:, g_hi]) - cw_s
    prec = np.nan_to_num(ratio(tp_top, all_top))
    ap = _segsum(pos_r * prec, cells.run_bounds)
    out[:, idx["auprc"]] = np.where(both, ratio(ap, pos), np.nan)
    if "ece" not in skip:
        out[:, idx["ece"]] = _ece(cells, cw, cy, cp, n_g, ece_bins)
    if {"cal_intercept", "cal_slope"} <= skip:
        return out
    x = calibration_logit(cells.p, clip) if cells.x is None else cells.x
    active = both & _overlap(cells, cw, cy, x)
    a, b = _calibration_fit(cells, ws, active, x, cal_start, ratio(pos, n_g))
    out[:, idx["cal_intercept"]] = a
    out[:, idx["cal_slope"]] = b
    return out
