"""Kernel-weighted metrics along a numeric attribute (age, BMI, ...), with bootstrap bands.

At a grid point ``x`` every row gets the Gaussian kernel weight
``w_i = exp(-((a_i - x) / h)^2 / 2)`` of its attribute value ``a_i`` (bandwidth ``h``;
rows with an unknown value weigh 0), and each metric is its weighted version:

* AUROC: the weighted Mann-Whitney statistic
  ``sum_{i pos, j neg} w_i w_j [s_i > s_j] + 1/2 [s_i = s_j]`` over ``W_pos W_neg``;
* sensitivity / specificity at the frozen threshold (``score >= threshold`` flags):
  the weighted share of positives flagged / of negatives not flagged;
* calibration-in-the-large: O/E ratio ``sum w y / sum w p``.

A bootstrap replicate multiplies the kernel weights by the replicate's row counts (from
:class:`ecgaudit.metrics._bootsample.Sampler`, so a seed means the same draws as the
audit's intervals). The compiled kernel and the numpy path give the same sums up to
floating-point order (tested). The effective sample size at a grid point is Kish's
``(sum w)^2 / sum w^2``.
"""

from __future__ import annotations

import math

import numpy as np

try:  # pragma: no cover - both paths are tested where numba is installed
    import numba

    HAVE_NUMBA = True
    _pjit = numba.njit(cache=True, nogil=True, parallel=True)
    _prange = numba.prange
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

    def _pjit(f):  # type: ignore[no-untyped-def]
        return f

    _prange = range

__all__ = [
    "CURVE_METRICS",
    "TRUNCATE",
    "CurveInputs",
    "bandwidth_rule",
    "curve_metrics",
    "curve_sums",
    "kernel_weights",
]

#: The Gaussian kernel is cut at this many bandwidths.
TRUNCATE = 6.0
#: Metrics drawn along a numeric axis, in display order.
CURVE_METRICS: tuple[str, ...] = ("auroc", "sensitivity", "specificity", "oe_ratio")
#: Weighted sums per grid point: total, positive and negative weight, Mann-Whitney
#: numerator, flagged positive weight, unflagged negative weight, sum of ``w p``, ``sum w^2``
#: and ``sum w^2`` over positives.
_SUMS = ("w", "wpos", "wneg", "u", "tp", "tn", "wp", "w2", "w2pos")


def bandwidth_rule(values: np.ndarray, rule: str | float) -> float:
    """Return the kernel bandwidth for an axis.

    Parameters
    ----------
    values : ndarray of float
        Known attribute values (NaN ignored).
    rule : {"silverman", "scott"} or float
        ``silverman``: ``0.9 min(sd, IQR / 1.34) n^(-1/5)``; ``scott``:
        ``1.06 sd n^(-1/5)``; a number is used as is (in the attribute's units).

    Returns
    -------
    float
        The bandwidth (``nan`` when fewer than two distinct values are known).
    """
    if not isinstance(rule, str):
        return float(rule)
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2 or np.ptp(x) == 0:
        return math.nan
    sd = float(np.std(x, ddof=1))
    n5 = x.size ** -0.2
    if rule == "scott":
        return 1.06 * sd * n5
    q75, q25 = np.percentile(x, [75, 25])
    spread = min(sd, (q75 - q25) / 1.34) if q75 > q25 else sd
    return 0.9 * spread * n5


def kernel_weights(values: np.ndarray, grid: np.ndarray, h: float) -> np.ndarray:
    """Gaussian kernel weights of every row at every grid point, shape ``(G, n)``.

    The kernel is truncated at ``TRUNCATE`` bandwidths (weights below ``1.5e-8`` become 0,
    so a grid point's sums visit only the rows near it); rows whose value is NaN get 0.
    """
    a = np.asarray(values, dtype=float)
    z = (a[None, :] - np.asarray(grid, dtype=float)[:, None]) / h
    w = np.exp(-0.5 * z * z)
    w[~(np.abs(z) <= TRUNCATE)] = 0.0
    return w


class CurveInputs:
    """One group's rows sorted by score, ready for repeated weighted sums.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels.
    p : ndarray of float
        Scores.
    threshold : float
        Frozen operating threshold (``p >= threshold`` flags).
    kernel : ndarray, shape (G, n)
        Kernel weights of the rows (in the given row order).
    """

    def __init__(self, y: np.ndarray, p: np.ndarray, threshold: float,
                 kernel: np.ndarray) -> None:
        p = np.asarray(p, dtype=np.float64)
        y = np.asarray(y).astype(np.int8)
        order = np.lexsort((y, p))
        self.order = order
        self.p = np.ascontiguousarray(p[order])
        self.y = np.ascontiguousarray(y[order])
        self.flag = np.ascontiguousarray(self.p >= threshold)
        self.kernel = np.ascontiguousarray(kernel[:, order], dtype=np.float64)
        new = np.ones(p.size, dtype=bool)
        new[1:] = self.p[1:] != self.p[:-1]
        self.starts = np.append(np.flatnonzero(new), p.size).astype(np.int64)
        self.yf = self.y.astype(np.float64)
        self.tpf = self.yf * self.flag
        self.tnf = (1.0 - self.yf) * ~self.flag
        # Per grid point, the rows with a non-zero weight (sorted positions), their weights
        # and whether each ends its tie block among those rows (compressed rows).
        g_idx, pos = np.nonzero(self.kernel)
        self.ptr = np.searchsorted(g_idx, np.arange(self.kernel.shape[0] + 1)).astype(np.int64)
        self.pos = pos.astype(np.int64)
        self.kv = self.kernel[g_idx, pos]
        ends = np.ones(pos.size)
        same_g = g_idx[1:] == g_idx[:-1]
        ends[:-1] = ~(same_g & (self.p[pos[1:]] == self.p[pos[:-1]]))
        self.kv_last = ends

@_pjit
def _sums_kernel(yf, p, tpf, tnf, ptr, pos, kv, kv_last, counts,
                 out):  # pragma: no cover - compiled
    # Branch-free over the rows near grid point g: yf = y, tpf = y * flag,
    # tnf = (1 - y)(1 - flag); kv_last = 1 on a tie block's last row (its weights then join
    # the Mann-Whitney sum).
    n_rep, n_grid = out.shape[0], out.shape[1]
    for bg in _prange(n_rep * n_grid):
        b = bg // n_grid
        g = bg % n_grid
        w_all = 0.0
        wpos = 0.0
        wneg = 0.0
        u = 0.0
        tp = 0.0
        tn = 0.0
        wp = 0.0
        w2 = 0.0
        w2pos = 0.0
        bp = 0.0
        bn = 0.0
        for j in range(ptr[g], ptr[g + 1]):
            i = pos[j]
            w = kv[j] * counts[b, i]
            wy = w * yf[i]
            w_all += w
            w2 += w * w
            w2pos += wy * w
            wp += w * p[i]
            tp += w * tpf[i]
            tn += w * tnf[i]
            bp += wy
            bn += w - wy
            e = kv_last[j]
            u += e * bp * (wneg + 0.5 * bn)
            wpos += e * bp
            wneg += e * bn
            bp -= e * bp
            bn -= e * bn
        out[b, g, 0] = w_all
        out[b, g, 1] = wpos
        out[b, g, 2] = wneg
        out[b, g, 3] = u
        out[b, g, 4] = tp
        out[b, g, 5] = tn
        out[b, g, 6] = wp
        out[b, g, 7] = w2
        out[b, g, 8] = w2pos


def _sums_numpy(c: CurveInputs, counts: np.ndarray) -> np.ndarray:
    out = np.empty((counts.shape[0], c.kernel.shape[0], len(_SUMS)))
    pos = c.y == 1
    for b in range(counts.shape[0]):
        w = c.kernel * counts[b][None, :]
        wpos_rows = w * pos
        wneg_rows = w - wpos_rows
        bp = np.add.reduceat(wpos_rows, c.starts[:-1], axis=1)
        bn = np.add.reduceat(wneg_rows, c.starts[:-1], axis=1)
        below = np.cumsum(bn, axis=1) - bn
        out[b, :, 0] = w.sum(axis=1)
        out[b, :, 1] = bp.sum(axis=1)
        out[b, :, 2] = bn.sum(axis=1)
        out[b, :, 3] = (bp * (below + 0.5 * bn)).sum(axis=1)
        out[b, :, 4] = wpos_rows[:, c.flag].sum(axis=1)
        out[b, :, 5] = wneg_rows[:, ~c.flag].sum(axis=1)
        out[b, :, 6] = w @ c.p
        out[b, :, 7] = (w * w).sum(axis=1)
        out[b, :, 8] = (wpos_rows * wpos_rows).sum(axis=1)
    return out


def curve_sums(c: CurveInputs, counts: np.ndarray | None = None,
               compiled: bool | None = None) -> np.ndarray:
    """Weighted sums per replicate and grid point, shape ``(B, G, 9)``.

    Parameters
    ----------
    c : CurveInputs
        The group's sorted rows and kernel weights.
    counts : ndarray of int, shape (B, n), optional
        Replicate row counts in the rows' original order (default: one replicate of ones,
        the point estimate).
    compiled : bool, optional
        Use the numba kernel (default: when numba is installed).

    Returns
    -------
    ndarray
        Sums in the order ``w, wpos, wneg, u, tp, tn, wp, w2, w2pos``.
    """
    n = c.p.size
    if counts is None:
        counts = np.ones((1, n), dtype=np.int32)
    counts = np.ascontiguousarray(np.asarray(counts)[:, c.order], dtype=np.int32)
    use = HAVE_NUMBA if compiled is None else (compiled and HAVE_NUMBA)
    if not use:
        return _sums_numpy(c, counts)
    out = np.empty((counts.shape[0], c.kernel.shape[0], len(_SUMS)))
    _sums_kernel(c.yf, c.p, c.tpf, c.tnf, c.ptr, c.pos, c.kv, c.kv_last, counts, out)
    return out


def curve_metrics(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics and effective sizes from :func:`curve_sums` output.

    Returns
    -------
    dict
        ``auroc, sensitivity, specificity, oe_ratio`` (NaN where undefined) and Kish
        effective sizes ``n_eff`` (all rows), ``n_eff_pos``, ``n_eff_neg``, each of shape
        ``sums.shape[:-1]``.
    """
    w, wpos, wneg, u, tp, tn, wp, w2, w2pos = np.moveaxis(sums, -1, 0)
    w2neg = w2 - w2pos
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "auroc": np.where((wpos > 0) & (wneg > 0), u / (wpos * wneg), np.nan),
            "sensitivity": np.where(wpos > 0, tp / wpos, np.nan),
            "specificity": np.where(wneg > 0, tn / wneg, np.nan),
            "oe_ratio": np.where(wp > 0, wpos / wp, np.nan),
            "n_eff": np.where(w2 > 0, w * w / w2, 0.0),
            "n_eff_pos": np.where(w2pos > 0, wpos * wpos / w2pos, 0.0),
            "n_eff_neg": np.where(w2neg > 0, wneg * wneg / np.where(w2neg > 0, w2neg, 1), 0.0),
        }
    return out
