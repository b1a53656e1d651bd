"""Survival metrics of one group under row weights (ones, or a bootstrap replicate's counts).

The censoring distribution ``G`` is estimated **within each group** (reverse Kaplan-Meier
of the group's own rows). Follow-up often differs between groups (sites with different
registry linkage, age groups with different loss to follow-up), and then a pooled ``G``
would mis-weight every group; within-group estimation only assumes censoring independent
of the outcome *within* the group, and makes a group's metric exactly what a survival
library computes on that group alone (the reference tests rely on this). The price is more
noise in small groups, which the bootstrap carries into the intervals.

IPCW weights follow scikit-survival: an event at ``T <= h`` weighs ``1 / G(T)``, a patient
still event-free at ``h`` weighs ``1 / G(h)`` and, with competing events, a competing event
at ``T <= h`` (known not to have had the event by ``h``) weighs ``1 / G(T)``. Harrell's C
treats a competing event as never having the event of interest (it stays comparable with
every event, as in Wolbers et al. 2009).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecgaudit.metrics._survconc import concordance_sums, risk_ranks
from ecgaudit.metrics._survkm import (
    COMPETING,
    EVENT,
    SurvivalRows,
    aalen_johansen,
    censoring_km,
    step_at,
)
from ecgaudit.metrics._survtable import SURVIVAL_METRICS

__all__ = ["SurvGroup", "harrell_influence", "metric_keys", "survival_values"]

NAN = float("nan")
#: Grid points and clip of the smoothed calibration curve.
CAL_GRID = 20
CAL_CLIP = 1e-6
CAL_BINS = 200


@dataclass(frozen=True)
class SurvGroup:
    """One group's rows prepared once: sorted by time, risk ranks, probabilities."""

    rows: SurvivalRows
    rank: np.ndarray
    n_ranks: int
    prob: np.ndarray | None
    conc_rows: SurvivalRows
    conc_rank: np.ndarray

    @classmethod
    def build(cls, time: np.ndarray, event: np.ndarray, score: np.ndarray,
              prob: np.ndarray | None) -> SurvGroup:
        """Prepare a group from its rows (original order)."""
        rows = SurvivalRows.build(time, event)
        ranks, k = risk_ranks(score)
        comp = event == COMPETING
        if comp.any():
            conc = SurvivalRows.build(np.where(comp, np.inf, time),
                                      np.where(comp, 0, event).astype(np.int8))
        else:
            conc = rows
        sorted_prob = None if prob is None else np.asarray(prob, float)[rows.index]
        return cls(rows, ranks[rows.index], k, sorted_prob, conc, ranks[conc.index])

    @property
    def n(self) -> int:
        """Rows in the group."""
        return int(self.rows.time.size)


def metric_keys(horizons: Sequence[float]) -> list[tuple[str, float | None]]:
    """``(metric, horizon)`` of every reported value, in table order."""
    hs = sorted(float(h) for h in horizons)
    keys: list[tuple[str, float | None]] = []
    for m in SURVIVAL_METRICS:
        if m.horizon == "none":
            keys.append((m.name, None))
        elif m.horizon == "largest":
            keys.append((m.name, hs[-1]))
        else:
            keys += [(m.name, h) for h in hs]
    return keys


def _harrell(g: SurvGroup, w: np.ndarray) -> float:
    num, den, _, _ = concordance_sums(g.conc_rows.time, g.conc_rows.event, g.conc_rank,
                                      g.n_ranks, w[g.conc_rows.index])
    return num / den if den > 0 else NAN


def harrell_influence(g: SurvGroup) -> tuple[float, np.ndarray]:
    """Harrell's C and each row's infinitesimal-jackknife influence (original row order).

    The variance of C is the sum of squared influences (summed within patients first
    when rows are clustered), as in R's ``survival::concordance``.
    """
    c = g.conc_rows
    num, den, dn, dd = concordance_sums(c.time, c.event, g.conc_rank, g.n_ranks,
                                        np.ones(g.n), influence=True)
    out = np.zeros(g.n)
    if den <= 0 or dn is None or dd is None:
        return NAN, out
    est = num / den
    out[c.index] = (dn - est * dd) / den
    return est, out


def _uno(g: SurvGroup, w: np.ndarray, gt: np.ndarray, tau: float) -> float:
    r = g.rows
    ok = (r.event == EVENT) & (r.time < tau) & (gt > 0)
    cw = np.zeros(r.time.size)
    cw[ok] = 1.0 / gt[ok] ** 2
    num, den, _, _ = concordance_sums(r.time, r.event, g.rank, g.n_ranks, w, cw)
    return num / den if den > 0 else NAN


def _weighted_auc(rank: np.ndarray, n_ranks: int, a: np.ndarray, b: np.ndarray) -> float:
    ca = np.bincount(rank, weights=a, minlength=n_ranks + 1)
    cb = np.bincount(rank, weights=b, minlength=n_ranks + 1)
    below = np.cumsum(cb) - cb
    den = ca.sum() * cb.sum()
    return float(np.dot(ca, below + 0.5 * cb) / den) if den > 0 else NAN


def _smoothed_ici(p: np.ndarray, y: np.ndarray, known_w: np.ndarray, w: np.ndarray
                  ) -> float:
    """Weighted Gaussian-kernel calibration curve on the logit scale; mean |curve - p|.

    The curve is evaluated at ``CAL_GRID`` weighted quantiles of the logit predictions of
    the rows with known status by the horizon, pooled into ``CAL_BINS`` equal-width logit
    bins (IPCW weights in the smoother; frequency
    weights for the grid and the Silverman bandwidth, so a replicate equals the same
    computation on repeated rows) and interpolated linearly in between.
    """
    pc = np.clip(p, CAL_CLIP, 1.0 - CAL_CLIP)
    x = np.log(pc / (1.0 - pc))
    keep = known_w > 0
    if keep.sum() < 2 or not np.any(y[keep]) or np.all(y[keep]):
        return NAN
    order = np.argsort(x[keep], kind="stable")
    xs, ys = x[keep][order], y[keep][order]
    ws, fs = known_w[keep][order], w[keep][order]
    ftot = fs.sum()
    mean = float(np.dot(xs, fs) / ftot)
    sd = math.sqrt(float(np.dot((xs - mean) ** 2, fs) / ftot))
    bw = 1.06 * sd * float(ftot) ** -0.2 if sd > 0 else 1.0
    at = np.searchsorted(np.cumsum(fs), np.arange(CAL_GRID) / (CAL_GRID - 1) * ftot)
    grid = xs[np.minimum(at, xs.size - 1)]
    # Binned smoother: rows pooled into CAL_BINS equal-width logit bins (weighted mean
    # position, summed weights), so a replicate costs O(n + grid x bins), not O(n x grid).
    span = xs[-1] - xs[0]
    b = (np.minimum(((xs - xs[0]) / span * CAL_BINS).astype(np.int64), CAL_BINS - 1)
         if span > 0 else np.zeros(xs.size, np.int64))
    bw_sum = np.bincount(b, weights=ws, minlength=CAL_BINS)
    bx = np.bincount(b, weights=ws * xs, minlength=CAL_BINS)
    by = np.bincount(b, weights=ws * ys, minlength=CAL_BINS)
    nz = bw_sum > 0
    centre = bx[nz] / bw_sum[nz]
    k = np.exp(-0.5 * ((grid[:, None] - centre[None, :]) / bw) ** 2)
    curve = (k @ by[nz]) / (k @ bw_sum[nz])
    cal = np.interp(x, grid, curve)
    wt = w.sum()
    return float(np.dot(w, np.abs(cal - pc)) / wt) if wt > 0 else NAN


def _at_horizon(g: SurvGroup, w: np.ndarray, gt: np.ndarray, G: np.ndarray, h: float,
                threshold: float) -> dict[str, float]:
    r = g.rows
    out = dict.fromkeys(("td_auroc", "brier", "observed_risk", "predicted_risk",
                         "oe_ratio", "cal_ici", "sensitivity", "specificity", "ppv"), NAN)
    alive = w > 0
    if not alive.any() or h >= r.time[alive].max():
        return out
    gh = float(step_at(r.uniq, G, h))
    inv_t = np.divide(1.0, gt, out=np.zeros_like(gt), where=gt > 0)
    case = (r.event == EVENT) & (r.time <= h)
    other = (r.event == COMPETING) & (r.time <= h)
    ctrl = r.time > h
    a = w * case * inv_t
    b = w * (ctrl / gh if gh > 0 else 0.0) + w * other * inv_t
    out["td_auroc"] = _weighted_auc(g.rank, g.n_ranks, a, b)
    out["observed_risk"] = float(step_at(r.uniq, aalen_johansen(r, w), h, before=0.0))
    if g.prob is None or gh <= 0:
        return out
    p = g.prob
    wt = w.sum()
    out["brier"] = float(np.dot(a, (1.0 - p) ** 2) + np.dot(b, p**2)) / wt
    mean_p = float(np.dot(w, p) / wt)
    out["predicted_risk"] = mean_p
    out["oe_ratio"] = out["observed_risk"] / mean_p if mean_p > 0 else NAN
    out["cal_ici"] = _smoothed_ici(p, case.astype(float), a + b, w)
    flag = p >= threshold
    sa, sb = a.sum(), b.sum()
    out["sensitivity"] = float(a[flag].sum() / sa) if sa > 0 else NAN
    out["specificity"] = float(b[~flag].sum() / sb) if sb > 0 else NAN
    fl = a[flag].sum() + b[flag].sum()
    out["ppv"] = float(a[flag].sum() / fl) if fl > 0 else NAN
    return out


def survival_values(g: SurvGroup, w: np.ndarray | None, horizons: Sequence[float],
                    threshold: float) -> np.ndarray:
    """Every metric of ``metric_keys(horizons)`` for one group under row weights.

    Parameters
    ----------
    g : SurvGroup
        The prepared group.
    w : ndarray or None
        Weight of every row in the group's original order (``None``: ones).
    horizons : sequence of float
        Horizons, in the time column's unit.
    threshold : float
        Frozen threshold on the predicted probability.

    Returns
    -------
    ndarray of float
        One value per key; ``nan`` where the metric is undefined for these weights.
    """
    w_orig = np.ones(g.n) if w is None else np.asarray(w, dtype=np.float64)
    w_sorted = w_orig[g.rows.index]
    hs = sorted(float(h) for h in horizons)
    G = censoring_km(g.rows, w_sorted)
    gt = step_at(g.rows.uniq, G, g.rows.time)
    per_h = {h: _at_horizon(g, w_sorted, gt, G, h, threshold) for h in hs}
    vals: dict[tuple[str, float | None], float] = {
        ("harrell_c", None): _harrell(g, w_orig),
    }
    alive = w_sorted > 0
    tmax = g.rows.time[alive].max() if alive.any() else -np.inf
    vals[("uno_c", hs[-1])] = _uno(g, w_sorted, gt, hs[-1]) if hs[-1] < tmax else NAN
    ibs = NAN
    if len(hs) >= 2:
        b = np.array([per_h[h]["brier"] for h in hs])
        ibs = float(np.trapezoid(b, hs) / (hs[-1] - hs[0]))
    vals[("ibs", hs[-1])] = ibs
    for h in hs:
        for name, v in per_h[h].items():
            vals[(name, h)] = v
    return np.array([vals[k] for k in metric_keys(hs)], dtype=np.float64)
