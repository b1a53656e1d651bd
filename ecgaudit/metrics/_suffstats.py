"""The one sufficient-statistics layout of the binary engines, and the one ``assemble`` step.

Every binary engine (the numpy cell engine :mod:`ecgaudit.metrics._bootstats`, the compiled
row engine :mod:`ecgaudit.metrics._kernels`, the binned engine
:mod:`ecgaudit.metrics._binkernels` / :mod:`ecgaudit.metrics._binfused`) reduces a batch of
replicates to the same statistics per (replicate, group slot), and :func:`assemble` alone
turns them into metric values: each metric's formula exists once, here.

Layout: two arrays, ``ints`` of shape ``(R, len(I_STATS), S)`` (int64, exact) and ``floats``
of shape ``(R, len(F_STATS), S)`` (float64); field ``name`` sits at index
``I_STATS.index(name)`` resp. ``F_STATS.index(name)`` (the ``I_*`` / ``F_*`` constants, also
used inside the compiled kernels). :class:`SuffStats` names them.

Integer fields: ``n`` rows, ``pos`` positives, ``tp`` true positives and ``flagged`` rows at
the frozen threshold (``score >= threshold``), ``u2`` twice the Mann-Whitney U (ties 1/2);
for the ranking metrics, summed over the group's negatives (``bg_c``) or positives
(``bg_e``), the cohort's positives (resp. negatives) below plus at-or-below each row, and
``ref_x`` / ``ref_y`` the same for the reference group's negatives / positives.

Floating fields: ``sum_p`` sum of scores, ``sq`` squared-error sum, ``ap`` sum over
positives of the precision at their score (AUPRC numerator), ``ece`` the ECE numerator
``sum_b |sum_b (y - p)|``, ``cal_a`` / ``cal_b`` the recalibration intercept and slope
(:mod:`ecgaudit.metrics._newton`), and ``dl10`` / ``dl01`` the sums of squared DeLong
components (``(2 n_neg V10)^2`` over positives, ``(2 n_pos V01)^2`` over negatives).

Engines that do not compute a field leave it 0 (integers) or ``nan`` (floats) and
:func:`assemble` is asked not to form the metrics that need it (``ranking=False``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgaudit.schema import METRICS, RANKING_METRICS

__all__ = [
    "EXTENDED", "EXTENDED_INDEX", "F_STATS", "I_STATS", "SuffStats", "assemble",
    "delong_variance", "fill_rates", "ratio",
]

#: Integer statistics per group slot (see the module docstring).
I_STATS = ("n", "pos", "tp", "flagged", "u2", "bg_c", "bg_e", "ref_x", "ref_y")
#: Floating statistics per group slot (see the module docstring).
F_STATS = ("sum_p", "sq", "ap", "ece", "cal_a", "cal_b", "dl10", "dl01")

I_N, I_POS, I_TP, I_FLAGGED, I_U2, I_BG_C, I_BG_E, I_REF_X, I_REF_Y = range(len(I_STATS))
F_SUM_P, F_SQ, F_AP, F_ECE, F_CAL_A, F_CAL_B, F_DL10, F_DL01 = range(len(F_STATS))

#: Metric axis of every engine's output: every metric, then the ranking metrics.
EXTENDED = (*METRICS, *RANKING_METRICS)
EXTENDED_INDEX = {m: i for i, m in enumerate(EXTENDED)}


@dataclass(frozen=True)
class SuffStats:
    """Sufficient statistics of a batch of replicates, fields named by the layout.

    Attributes
    ----------
    ints : ndarray of int64, shape (R, len(I_STATS), S)
        Integer fields (:data:`I_STATS`).
    floats : ndarray of float64, shape (R, len(F_STATS), S)
        Floating fields (:data:`F_STATS`).
    """

    ints: np.ndarray
    floats: np.ndarray

    @classmethod
    def zeros(cls, *lead: int, n_slots: int) -> SuffStats:
        """Zeroed statistics of shape ``(*lead, k, n_slots)`` (engines fill them in place)."""
        return cls(np.zeros((*lead, len(I_STATS), n_slots), dtype=np.int64),
                   np.zeros((*lead, len(F_STATS), n_slots)))

    def __getitem__(self, name: str) -> np.ndarray:
        """Field ``name`` of :data:`I_STATS` or :data:`F_STATS`, shape ``(..., S)``."""
        if name in I_STATS:
            return self.ints[..., I_STATS.index(name), :]
        return self.floats[..., F_STATS.index(name), :]

    def task(self, t: int) -> SuffStats:
        """Return the statistics of task ``t`` of a ``(T, R, k, S)`` batch."""
        return SuffStats(self.ints[t], self.floats[t])


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


def auroc_value(u2: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """AUROC from twice the Mann-Whitney U: ``U / (pos neg)``; ``nan`` without both classes."""
    return np.where((pos > 0) & (neg > 0), ratio(u2, 2 * pos * neg), np.nan)


def assemble(stats: SuffStats, refslot: np.ndarray | None = None,
             cohort_slots: np.ndarray | None = None) -> np.ndarray:
    """Metrics ``(R, len(EXTENDED), S)`` from the statistics ``(R, k, S)``.

    Parameters
    ----------
    stats : SuffStats
        One task's statistics.
    refslot : ndarray of int, optional
        ``refslot[g]``: the slot of group ``g``'s reference (-1: none, or ``g`` is the
        reference).
    cohort_slots : ndarray of int, optional
        The slots of one grouping, whose sums are the cohort totals (the background of
        BPSN/BNSP is the cohort minus the group). Without ``refslot`` and
        ``cohort_slots`` the ranking metrics are left ``nan`` (engines that do not count
        them).

    Returns
    -------
    ndarray of float64
        Metric values along :data:`EXTENDED`; ``nan`` where undefined.
    """
    ist, fst = stats.ints, stats.floats
    n, pos, tp, flagged, u2, bg_c, bg_e, ref_x, ref_y = (
        ist[:, i].astype(np.float64) for i in range(len(I_STATS)))
    sum_p, sq, ap, ece, cal_a, cal_b = (fst[:, i] for i in range(6))
    neg = n - pos
    both = (pos > 0) & (neg > 0)
    out = np.full((ist.shape[0], len(EXTENDED), ist.shape[2]), np.nan)
    idx = EXTENDED_INDEX
    out[:, idx["auroc"]] = auroc_value(u2, pos, neg)
    out[:, idx["auprc"]] = np.where(both, ratio(ap, pos), np.nan)
    out[:, idx["brier"]] = ratio(sq, n)
    out[:, idx["oe_ratio"]] = ratio(pos, sum_p)
    out[:, idx["cal_intercept"]] = cal_a
    out[:, idx["cal_slope"]] = cal_b
    out[:, idx["ece"]] = ratio(ece, n)
    fill_rates(out, idx, n, pos, tp, flagged)
    if refslot is None or cohort_slots is None:
        return out
    p_all = pos[:, cohort_slots].sum(axis=1, keepdims=True)
    n_all = neg[:, cohort_slots].sum(axis=1, keepdims=True)
    u = u2 / 2.0
    out[:, idx["bpsn_auc"]] = ratio(neg * p_all - bg_c / 2.0 - u, (p_all - pos) * neg)
    out[:, idx["bnsp_auc"]] = ratio(bg_e / 2.0 - u, pos * (n_all - neg))
    has_ref = refslot >= 0
    r = np.where(has_ref, refslot, 0)
    p_ref, n_ref = pos[:, r], neg[:, r]
    out[:, idx["xauc_group_vs_ref"]] = np.where(has_ref, ratio(ref_x / 2.0, pos * n_ref),
                                                np.nan)
    out[:, idx["xauc_ref_vs_group"]] = np.where(
        has_ref, ratio(neg * p_ref - ref_y / 2.0, p_ref * neg), np.nan)
    return out


def delong_variance(stats: SuffStats) -> np.ndarray:
    """DeLong variance of every group's AUROC from one unit-weight pass, shape ``(R, S)``.

    ``var = s10 / m + s01 / n`` with the sample variances (ddof 1) of the structural
    components ``V10`` (one per positive) and ``V01`` (one per negative); ``nan`` with fewer
    than two positives or negatives.
    """
    ist, fst = stats.ints, stats.floats
    m = ist[:, I_POS].astype(np.float64)
    n = ist[:, I_N].astype(np.float64) - m
    auc = ratio(ist[:, I_U2], 2.0 * m * n)
    s10 = ratio(ratio(fst[:, F_DL10], 4.0 * n * n) - m * auc * auc, m - 1.0)
    s01 = ratio(ratio(fst[:, F_DL01], 4.0 * m * m) - n * auc * auc, n - 1.0)
    return np.where((m >= 2) & (n >= 2), s10 / m + s01 / n, np.nan)
