"""Paired statistics of two models on the same rows: DeLong for AUROC, bootstrap otherwise.

The bootstrap works on per-unit sums (a unit is a patient, or a row): every metric here is a
ratio of sums, so a replicate is a vector of unit counts times the unit-sum matrix. Both
models' statistics come from the same draw, which is what makes the interval paired.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ecgaudit.metrics import auroc, delong_paired

__all__ = ["METHOD_DELONG", "paired_group"]

METHOD_DELONG = "paired DeLong"


def _unit_sums(y: np.ndarray, pb: np.ndarray, pc: np.ndarray, tb: float, tc: float,
               units: np.ndarray) -> np.ndarray:
    """Per-unit sums of the statistics every bootstrap metric is a ratio of."""
    fb, fc = (pb >= tb).astype(float), (pc >= tc).astype(float)
    yf = y.astype(float)
    cols = np.column_stack([
        np.ones_like(yf), yf,                     # 0 n, 1 positives
        fb * yf, fb * (1 - yf), fb,               # 2 tp_b, 3 fp_b, 4 flag_b
        fc * yf, fc * (1 - yf), fc,               # 5 tp_c, 6 fp_c, 7 flag_c
        (pb - yf) ** 2, (pc - yf) ** 2, pb, pc,   # 8 sq_b, 9 sq_c, 10 sum p_b, 11 sum p_c
    ])
    k = int(units.max()) + 1
    out = np.zeros((k, cols.shape[1]))
    np.add.at(out, units, cols)
    return out


def _metrics_from_sums(s: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Metric values (baseline, candidate) from summed statistics (last axis = columns)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        n, pos = s[..., 0], s[..., 1]
        neg = n - pos
        out = {}
        for tp, fp, fl, sq, sp in ((2, 3, 4, 8, 10), (5, 6, 7, 9, 11)):
            tp_, fp_, fl_ = s[..., tp], s[..., fp], s[..., fl]
            fn_, tn_ = pos - tp_, neg - fp_
            vals = {
                "brier": s[..., sq] / n, "oe_ratio": pos / s[..., sp],
                "sensitivity": tp_ / pos, "specificity": tn_ / neg, "ppv": tp_ / fl_,
                "npv": tn_ / (n - fl_), "fnr": fn_ / pos, "fpr": fp_ / neg, "flag_rate": fl_ / n,
            }
            for k, v in vals.items():
                out.setdefault(k, []).append(v)  # type: ignore[arg-type]
    return {k: (v[0], v[1]) for k, v in out.items()}  # type: ignore[misc]


def paired_group(y: np.ndarray, pb: np.ndarray, pc: np.ndarray, tb: float, tc: float,
                  units: np.ndarray, n_boot: int, level: float, rng: np.random.Generator,
                  max_degenerate: float) -> dict[str, dict[str, Any]]:
    """Paired changes (candidate - baseline) of every paired metric in one group.

    Parameters
    ----------
    y : ndarray of {0, 1}
        Labels.
    pb, pc : ndarray of float
        Baseline and candidate scores of the same rows.
    tb, tc : float
        The two models' frozen thresholds (flag = score >= threshold).
    units : ndarray of int
        Resampling unit of every row (patient codes, or ``arange(n)``).
    n_boot : int
        Bootstrap replicates.
    level : float
        Confidence level.
    rng : numpy.random.Generator
        Random source (draws are made in a fixed order: seeded, reproducible).
    max_degenerate : float
        Largest share of undefined replicates for which an interval is still given.

    Returns
    -------
    dict
        ``{metric: {baseline, candidate, change, change_ci_low, change_ci_high, ci_method?}}``
        or ``{metric: {status, reason}}`` when the metric is undefined in the group.
    """
    out: dict[str, dict[str, Any]] = {}
    diff, lo, hi, _ = delong_paired(y, pc, pb, level)
    if math.isfinite(diff):
        a_b = auroc(y, pb)
        out["auroc"] = {"baseline": a_b, "candidate": a_b + diff, "change": diff,
                        "change_ci_low": lo, "change_ci_high": hi, "ci_method": METHOD_DELONG}
    else:
        out["auroc"] = {"status": "insufficient",
                        "reason": "AUROC needs at least 2 positive and 2 negative cases"}
    _, units = np.unique(units, return_inverse=True)
    sums = _unit_sums(y, pb, pc, tb, tc, units)
    point = _metrics_from_sums(sums.sum(axis=0))
    k = sums.shape[0]
    reps: dict[str, list[np.ndarray]] = {m: [] for m in point}
    chunk = max(1, min(n_boot, 2_000_000 // max(k, 1)))
    done = 0
    while done < n_boot and n_boot > 0:
        b = min(chunk, n_boot - done)
        draws = rng.integers(0, k, size=(b, k)) + (np.arange(b) * k)[:, None]
        w = np.bincount(draws.ravel(), minlength=b * k).reshape(b, k).astype(float)
        rep = _metrics_from_sums(w @ sums)
        for m, (vb, vc) in rep.items():
            reps[m].append(vc - vb)
        done += b
    alpha = (1.0 - level) / 2.0
    for m, (vb, vc) in point.items():
        vb, vc = float(vb), float(vc)
        if not (math.isfinite(vb) and math.isfinite(vc)):
            out[m] = {"status": "insufficient", "reason": f"{m} is undefined in this group"}
            continue
        row = {"baseline": vb, "candidate": vc, "change": vc - vb}
        d = np.concatenate(reps[m]) if reps[m] else np.array([])
        ok = np.isfinite(d)
        if d.size and (1.0 - ok.mean()) <= max_degenerate:
            q = np.quantile(d[ok], [alpha, 1.0 - alpha])
            row.update(change_ci_low=float(q[0]), change_ci_high=float(q[1]))
        else:
            row["reason"] = (f"{int((~ok).sum())} of {d.size} bootstrap replicates undefined; "
                             "no interval")
        out[m] = row
    return out
