"""Paired statistics of two models on the same rows: DeLong for AUROC, bootstrap otherwise.

The bootstrap works on per-unit sums (a unit is a patient, or a row): every metric here is a
ratio of sums, so a replicate is a vector of unit counts times the unit-sum matrix. Both
models' statistics come from the same draw, which is what makes the interval paired.

Replicates use the audit's counter-based stream (:mod:`ecgaudit.metrics._hashrng`): each
group takes one 63-bit seed from the comparison's ``numpy.random.Generator`` (groups in a fixed
order; the tasks of a group share it, :func:`paired_group_tasks`), and replicate ``r`` of the
group draws its units by the keys of that seed, summed by the
compiled kernel of :mod:`ecgaudit.metrics._pairkernel` (parallel over replicates, the same
numbers for any thread count; numpy without numba). This replaced, deliberately, an earlier
stream (``Generator.integers`` over units, a dense replicates x units weight matrix): the
intervals of ``ecgaudit compare`` changed once, by Monte-Carlo noise, when it did (point
estimates and the paired DeLong rows did not). The percentile limits are ``numpy.quantile``.

Also here: the unpaired change interval (:func:`unpaired_change_interval`) and the per-model
confusion rates the privacy plan reads (:func:`paired_confusion_rows`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import norm

from ecgaudit.metrics._binary import auroc
from ecgaudit.metrics._delong import delong_paired
from ecgaudit.metrics._hashrng import replicate_keys
from ecgaudit.metrics._pairkernel import replicate_sums
from ecgaudit.schema import RATE_METRICS

__all__ = [
    "METHOD_DELONG",
    "PAIRED_METRICS",
    "normal_quantile",
    "paired_confusion_rows",
    "paired_group",
    "paired_group_tasks",
    "paired_rng",
    "unpaired_change_interval",
]

METHOD_DELONG = "paired DeLong"
#: Metrics :func:`paired_group` computes paired (AUROC by DeLong, the rest bootstrap).
PAIRED_METRICS = ("auroc", "brier", "oe_ratio", *RATE_METRICS)
#: Columns of :func:`_unit_sums` per task.
N_SUMS = 12


def paired_rng(seed: int) -> np.random.Generator:
    """Return the random stream of a paired comparison (draws in a fixed order).

    Parameters
    ----------
    seed : int
        The comparison's seed (the config's unless overridden).

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(seed)


def normal_quantile(level: float) -> float:
    """Two-sided standard-normal quantile ``z`` of a ``level`` confidence interval."""
    return float(norm.ppf(0.5 + level / 2.0))


def unpaired_change_interval(change: float, ci_b: tuple[float, float],
                             ci_c: tuple[float, float], z: float) -> tuple[float, float] | None:
    """Limits ``change +/- z * sqrt(se_b^2 + se_c^2)`` of an unpaired change ``c - b``.

    Each standard error is read back from its interval, ``(high - low) / (2 z)``. For the
    same ECGs this ignores their positive correlation: conservative, never anti-conservative.

    Parameters
    ----------
    change : float
        Candidate minus baseline estimate.
    ci_b, ci_c : tuple of float
        The baseline's and the candidate's ``(low, high)`` intervals at the level of ``z``.
    z : float
        :func:`normal_quantile` of the level.

    Returns
    -------
    tuple of float or None
        ``(low, high)``, or None when either interval is not finite.
    """
    se_b = (ci_b[1] - ci_b[0]) / (2 * z)
    se_c = (ci_c[1] - ci_c[0]) / (2 * z)
    if not (math.isfinite(se_b) and math.isfinite(se_c)):
        return None
    half = z * math.sqrt(se_b**2 + se_c**2)
    return change - half, change + half


def paired_confusion_rows(task: str, attribute: str, group: str, y: np.ndarray,
                          flags: tuple[np.ndarray, np.ndarray]) -> list[dict[str, Any]]:
    """Sensitivity / specificity rows of both models, as the privacy plan reads them.

    Parameters
    ----------
    task, attribute, group : str
        Where the rows belong.
    y : ndarray of {0, 1}
        Labels of the group.
    flags : tuple of ndarray of bool
        Baseline and candidate flags (score >= threshold) of the same rows.

    Returns
    -------
    list of dict
        Two rows per model (``model`` is ``"baseline"`` or ``"candidate"``).
    """
    out = []
    pos = y == 1
    for model, flag in zip(("baseline", "candidate"), flags):
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        for metric, num, den in (("sensitivity", int((flag & pos).sum()), n_pos),
                                 ("specificity", int((~flag & ~pos).sum()), n_neg)):
            out.append({"model": model, "task": task, "attribute": attribute,
                        "group": group, "metric": metric, "n": y.size, "n_pos": n_pos,
                        "estimate": num / den if den else math.nan})
    return out


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
    return paired_group_tasks([(y, pb, pc, tb, tc)], units, n_boot, level, rng,
                              max_degenerate)[0]


def paired_group_tasks(tasks: list[tuple[np.ndarray, np.ndarray, np.ndarray, float, float]],
                       units: np.ndarray, n_boot: int, level: float, rng: np.random.Generator,
                       max_degenerate: float) -> list[dict[str, dict[str, Any]]]:
    """:func:`paired_group` of several tasks on the same rows, from one bootstrap draw.

    The tasks share the group's draws (one seed from ``rng``), so the units are drawn and
    counted once per replicate for all of them.

    Parameters
    ----------
    tasks : list of tuple
        ``(y, pb, pc, tb, tc)`` of every task, as in :func:`paired_group`.
    units, n_boot, level, rng, max_degenerate
        As in :func:`paired_group`.

    Returns
    -------
    list of dict
        One :func:`paired_group` result per task, in order.
    """
    _, units = np.unique(units, return_inverse=True)
    sums = [_unit_sums(y, pb, pc, tb, tc, units) for y, pb, pc, tb, tc in tasks]
    reps = _replicate_changes(np.hstack(sums), n_boot, rng)
    out = []
    for t, (y, pb, pc, _, _) in enumerate(tasks):
        res = {"auroc": _auroc_change(y, pb, pc, level)}
        for m, (vb, vc) in _metrics_from_sums(sums[t].sum(axis=0)).items():
            res[m] = _change_row(m, float(vb), float(vc), reps[t][m], level, max_degenerate)
        out.append(res)
    return out


def _auroc_change(y: np.ndarray, pb: np.ndarray, pc: np.ndarray, level: float
                  ) -> dict[str, Any]:
    """AUROC change by the paired DeLong test (``insufficient`` without 2 + 2 cases)."""
    diff, lo, hi, _ = delong_paired(y, pc, pb, level)
    if not math.isfinite(diff):
        return {"status": "insufficient",
                "reason": "AUROC needs at least 2 positive and 2 negative cases"}
    a_b = auroc(y, pb)
    return {"baseline": a_b, "candidate": a_b + diff, "change": diff,
            "change_ci_low": lo, "change_ci_high": hi, "ci_method": METHOD_DELONG}


def _replicate_changes(sums: np.ndarray, n_boot: int, rng: np.random.Generator
                       ) -> list[dict[str, np.ndarray]]:
    """Bootstrap replicates of every metric's change, per task: units drawn with replacement.

    ``sums`` holds the tasks' :func:`_unit_sums` side by side (:data:`N_SUMS` columns each).
    One seed is drawn from ``rng``; the replicates' draws are the counter-based stream of
    that seed (:func:`ecgaudit.metrics._hashrng.replicate_keys`).
    """
    seed = int(rng.integers(0, 2**63 - 1))
    if n_boot > 0:
        tot = replicate_sums(replicate_keys(seed, range(n_boot)), sums)
    else:
        tot = np.zeros((0, sums.shape[1]))
    out = []
    for t in range(sums.shape[1] // N_SUMS):
        rep = _metrics_from_sums(tot[:, t * N_SUMS:(t + 1) * N_SUMS])
        out.append({m: vc - vb for m, (vb, vc) in rep.items()})
    return out


def _change_row(metric: str, vb: float, vc: float, d: np.ndarray, level: float,
                max_degenerate: float) -> dict[str, Any]:
    """One metric's point change and percentile interval.

    No interval when too many replicates are undefined, or when the replicates collapse to
    one value (a zero-width interval would claim a certainty the data cannot carry).
    """
    if not (math.isfinite(vb) and math.isfinite(vc)):
        return {"status": "insufficient", "reason": f"{metric} is undefined in this group"}
    row: dict[str, Any] = {"baseline": vb, "candidate": vc, "change": vc - vb}
    alpha = (1.0 - level) / 2.0
    ok = np.isfinite(d)
    if d.size and (1.0 - ok.mean()) <= max_degenerate:
        q = np.quantile(d[ok], [alpha, 1.0 - alpha])
        if q[1] > q[0]:
            row.update(change_ci_low=float(q[0]), change_ci_high=float(q[1]))
        else:  # e.g. no positive in any replicate changes its flag: the spread is unknown
            row["reason"] = ("the bootstrap replicates collapse to one value "
                             f"({float(q[0]):.4g}); no interval of zero width is reported")
    else:
        row["reason"] = (f"{int((~ok).sum())} of {d.size} bootstrap replicates undefined; "
                         "no interval")
    return row
