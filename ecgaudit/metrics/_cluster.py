"""Design effects of patient clustering for the closed-form intervals.

With several ECGs per patient the rows are not independent, and a closed-form interval
that treats them as such is too narrow. Every group's closed-form interval is therefore
widened by a design effect ``deff`` (variance under clustering / variance under
independence, at least 1), computed per task, group and metric:

* **Rates** ``k / n`` (sensitivity = TP / positives, ...): the ratio-estimator variance
  over patients, ``C / (C - 1) sum_c (k_c - p n_c)^2 / n^2`` (``C`` patients with ``n_c > 0``;
  the cluster-robust variance of a mean), divided by the binomial ``p (1 - p) / n``. The
  Wilson interval then uses the Kish effective sample size ``n / deff``.
* **AUROC**: Obuchowski's (1997) clustered variance of the Mann-Whitney AUROC divided by
  the DeLong variance from the same structural components (it reduces to DeLong with one
  ECG per patient).
* **At the boundary** (a rate of 0 or 1, an AUROC of 0 or 1) the data carry no information
  about the within-patient correlation; the design effect is then the bound for perfectly
  correlated ECGs, ``sum_c n_c^2 / n`` (the size-weighted mean number of ECGs per patient),
  so the interval is about the one of the patients rather than of the ECGs.

Without a patient column every design effect is 1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RATE_CELLS", "auroc_design_effect", "clusters", "rate_design_effects"]

#: Cells (0 = TN, 1 = FP, 2 = FN, 3 = TP) of every rate's numerator and denominator.
RATE_CELLS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "sensitivity": ((3,), (2, 3)), "fnr": ((2,), (2, 3)),
    "specificity": ((0,), (0, 1)), "fpr": ((1,), (0, 1)),
    "ppv": ((3,), (1, 3)), "npv": ((0,), (0, 2)),
    "flag_rate": ((1, 3), (0, 1, 2, 3)), "prevalence": ((2, 3), (0, 1, 2, 3)),
}


Clusters = tuple[np.ndarray, np.ndarray]


def clusters(codes: np.ndarray, patient: np.ndarray) -> Clusters:
    """(group, patient) cluster index of every row and the group of every cluster.

    The same for every task of a grouping: compute once and pass to the design effects.
    """
    codes = np.asarray(codes, dtype=np.int64)
    patient = np.asarray(patient, dtype=np.int64)
    span = int(patient.max()) + 1 if patient.size else 1
    uniq, inv = np.unique(codes * span + patient, return_inverse=True)
    return np.asarray(inv, dtype=np.int64).reshape(-1), uniq // span


def _deff(k: np.ndarray, n: np.ndarray, grp: np.ndarray, n_groups: int) -> np.ndarray:
    """Design effect of ``sum k / sum n`` per group from per-cluster counts."""
    big_k = np.bincount(grp, weights=k, minlength=n_groups)
    big_n = np.bincount(grp, weights=n, minlength=n_groups)
    c = np.bincount(grp, weights=(n > 0).astype(float), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = big_k / big_n
        resid = (k - p[grp] * n) ** 2
        s = np.bincount(grp, weights=resid, minlength=n_groups)
        var_cl = c / (c - 1.0) * s / big_n**2
        var_bin = p * (1.0 - p) / big_n
        interior = var_cl / var_bin
        bound = np.bincount(grp, weights=n * n, minlength=n_groups) / big_n
    out = np.where((p > 0) & (p < 1) & (c > 1), interior, bound)
    return np.where(np.isfinite(out), np.maximum(out, 1.0), 1.0)


def rate_design_effects(y: np.ndarray, flag: np.ndarray, codes: np.ndarray, n_groups: int,
                        patient: np.ndarray, cl: Clusters | None = None
                        ) -> dict[str, np.ndarray]:
    """Design effect of every rate (and the prevalence) of every group.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels.
    flag : ndarray of bool
        ``p >= threshold``.
    codes : ndarray of int
        Group of every row.
    n_groups : int
        Number of groups.
    patient : ndarray of int
        Patient index of every row.
    cl : tuple, optional
        :func:`clusters` of ``codes`` and ``patient`` if already computed.

    Returns
    -------
    dict
        ``{rate: ndarray (n_groups,)}`` for the keys of :data:`RATE_CELLS`.
    """
    inv, grp = clusters(codes, patient) if cl is None else cl
    cell = 2 * (np.asarray(y) == 1).astype(np.int64) + np.asarray(flag, dtype=np.int64)
    counts = np.bincount(inv * 4 + cell, minlength=grp.size * 4).reshape(grp.size, 4)
    counts = counts.astype(np.float64)
    out = {rate: _deff(counts[:, list(num)].sum(axis=1), counts[:, list(den)].sum(axis=1),
                       grp, n_groups)
           for rate, (num, den) in RATE_CELLS.items() if rate not in ("fnr", "fpr")}
    # FNR = 1 - sensitivity, FPR = 1 - specificity: the very same design effect (bit for bit,
    # so mirrored rows get mirrored intervals).
    out["fnr"], out["fpr"] = out["sensitivity"], out["specificity"]
    return out


def _components(y: np.ndarray, p: np.ndarray, codes: np.ndarray, n_groups: int,
                score_order: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Structural components: V10 (positives) / V01 (negatives) per row, group M and N."""
    if score_order is None:
        order = np.lexsort((p, codes))
    else:  # rows sorted by score once per task, then stably by group
        order = score_order[np.argsort(codes[score_order], kind="stable")]
    cs, ps, ys = codes[order], p[order], (y[order] == 1).astype(np.float64)
    n = order.size
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = (cs[1:] != cs[:-1]) | (ps[1:] != ps[:-1])
    run = np.cumsum(new) - 1
    pos_run = np.bincount(run, weights=ys)
    neg_run = np.bincount(run, weights=1.0 - ys)
    run_group = cs[new]
    m = np.bincount(cs, weights=ys, minlength=n_groups)
    nn = np.bincount(cs, minlength=n_groups) - m
    cum_neg = np.concatenate([[0.0], np.cumsum(neg_run)[:-1]])
    cum_pos = np.concatenate([[0.0], np.cumsum(pos_run)[:-1]])
    first = np.concatenate([[True], run_group[1:] != run_group[:-1]]) if run_group.size else new[:0]
    start_run = np.maximum.accumulate(np.where(first, np.arange(run_group.size), 0))
    neg_below = cum_neg - cum_neg[start_run]
    pos_below = cum_pos - cum_pos[start_run]
    with np.errstate(invalid="ignore", divide="ignore"):
        v10_run = (neg_below + 0.5 * neg_run) / nn[run_group]
        v01_run = (m[run_group] - pos_below - pos_run + 0.5 * pos_run) / m[run_group]
    v = np.empty(n)
    v[order] = np.where(ys == 1, v10_run[run], v01_run[run])
    return v, m, nn


def auroc_design_effect(y: np.ndarray, p: np.ndarray, codes: np.ndarray, n_groups: int,
                        patient: np.ndarray, cl: Clusters | None = None,
                        score_order: np.ndarray | None = None) -> np.ndarray:
    """Obuchowski (1997) clustered variance / DeLong variance of every group's AUROC.

    Parameters
    ----------
    y, p : ndarray
        Labels and scores.
    codes : ndarray of int
        Group of every row.
    n_groups : int
        Number of groups.
    patient : ndarray of int
        Patient index of every row.
    cl : tuple, optional
        :func:`clusters` of ``codes`` and ``patient`` if already computed.
    score_order : ndarray, optional
        Stable ascending order of ``p`` (shared by the groupings of a task).

    Returns
    -------
    ndarray, shape (n_groups,)
        Design effect (>= 1; the boundary bound where both variances are 0; 1 where a
        class is missing).
    """
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    codes = np.asarray(codes, dtype=np.int64)
    v, m, nn = _components(y, p, codes, n_groups, score_order)
    pos = y == 1
    with np.errstate(invalid="ignore", divide="ignore"):
        theta = np.bincount(codes, weights=np.where(pos, v, 0.0), minlength=n_groups) / m
    inv, grp = clusters(codes, patient) if cl is None else cl
    k = grp.size
    xk = np.bincount(inv, weights=np.where(pos, v, 0.0), minlength=k)
    yk = np.bincount(inv, weights=np.where(pos, 0.0, v), minlength=k)
    mk = np.bincount(inv, weights=pos.astype(float), minlength=k)
    nk = np.bincount(inv, weights=(~pos).astype(float), minlength=k)
    th = theta[grp]
    dx, dy = xk - mk * th, yk - nk * th

    def gsum(w: np.ndarray) -> np.ndarray:
        return np.bincount(grp, weights=w, minlength=n_groups)

    i10, i01, i11 = gsum((mk > 0).astype(float)), gsum((nk > 0).astype(float)), gsum(
        np.ones(k))
    row_d = v - theta[codes]
    with np.errstate(invalid="ignore", divide="ignore"):
        s10 = i10 / ((i10 - 1.0) * m) * gsum(dx * dx)
        s01 = i01 / ((i01 - 1.0) * nn) * gsum(dy * dy)
        s11 = i11 / (i11 - 1.0) * gsum(dx * dy)
        var_cl = s10 / m + s01 / nn + 2.0 * s11 / (m * nn)
        ss10 = np.bincount(codes, weights=np.where(pos, row_d**2, 0.0), minlength=n_groups)
        ss01 = np.bincount(codes, weights=np.where(pos, 0.0, row_d**2), minlength=n_groups)
        var_dl = ss10 / (m * (m - 1.0)) + ss01 / (nn * (nn - 1.0))
        interior = var_cl / var_dl
        bound = np.maximum(gsum(mk * mk) / m, gsum(nk * nk) / nn)
    out = np.where(var_dl > 0, interior, bound)
    return np.where(np.isfinite(out), np.maximum(out, 1.0), 1.0)
