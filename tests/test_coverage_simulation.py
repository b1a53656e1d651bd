"""Validity by simulation: 95% intervals cover a known true AUROC in 93-97% of cohorts.

Binormal cohorts with unit variances and separation ``d`` have true AUROC ``Phi(d/sqrt 2)``.
Many independent cohorts are stacked as the groups of one grouping, so a single stratified
bootstrap run resamples each cohort on its own (strata = groups): one vectorised call
performs hundreds of independent bootstrap analyses.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from ecgaudit.metrics._bootstrap import Grouping, TaskArrays, bootstrap_intervals
from ecgaudit.metrics._delong import delong_auc_variance

SIMS = 500
D = 1.2
TRUE_AUC = float(norm.cdf(D / np.sqrt(2)))


def _stacked(n: int, prevalence: float, seed: int, ecgs_per_patient: int = 1,
             rho: float = 0.0):
    """SIMS cohorts of n ECGs; with several ECGs per patient, label and a share rho of the
    score variance are shared by the patient's ECGs (total score variance stays 1)."""
    rng = np.random.default_rng(seed)
    n_pat = n // ecgs_per_patient
    y_pat = (rng.random((SIMS, n_pat)) < prevalence).astype(np.int8)
    u = rng.normal(size=(SIMS, n_pat))
    y = np.repeat(y_pat, ecgs_per_patient, axis=1)
    shared = np.repeat(u, ecgs_per_patient, axis=1)
    z = D * y + np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.normal(size=y.shape)
    p = 1.0 / (1.0 + np.exp(-(z - 1.0)))  # monotone: AUROC unchanged
    codes = np.repeat(np.arange(SIMS, dtype=np.int32), n)
    patient = codes.astype(np.int64) * n_pat + np.tile(
        np.repeat(np.arange(n_pat), ecgs_per_patient), SIMS)
    task = TaskArrays("t", y.ravel(), p.ravel(), 0.5)
    grouping = Grouping("sim", codes, tuple(str(i) for i in range(SIMS)), None)
    return task, grouping, patient


def _auroc_coverage(task, grouping, patient=None, n_boot: int = 200) -> float:
    res = bootstrap_intervals([task], [grouping], n_boot=n_boot, seed=1, patient=patient,
                              metrics=("auroc",))
    m = res.metrics[res.metrics.metric == "auroc"]
    assert (m["reason"] == "").all()
    return float(np.mean((m["ci_low"] <= TRUE_AUC) & (m["ci_high"] >= TRUE_AUC)))


@pytest.mark.slow
def test_bootstrap_and_delong_cover_true_auroc_independent_ecgs() -> None:
    task, grouping, _ = _stacked(n=400, prevalence=0.3, seed=10)
    assert 0.93 <= _auroc_coverage(task, grouping, n_boot=1000) <= 0.97
    z = norm.ppf(0.975)
    hits = []
    for s in range(SIMS):
        m = grouping.codes == s
        auc, var = delong_auc_variance(task.y[m], task.p[m])
        hits.append(auc - z * np.sqrt(var) <= TRUE_AUC <= auc + z * np.sqrt(var))
    assert 0.93 <= np.mean(hits) <= 0.97


@pytest.mark.slow
def test_clustered_bootstrap_covers_and_naive_undercovers_repeated_ecgs() -> None:
    task, grouping, patient = _stacked(n=450, prevalence=0.3, seed=11, ecgs_per_patient=3,
                                       rho=0.7)
    clustered = _auroc_coverage(task, grouping, patient, n_boot=1000)
    naive = _auroc_coverage(task, grouping, None, n_boot=100)
    assert 0.93 <= clustered <= 0.97
    assert naive < 0.90
