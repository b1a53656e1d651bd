"""Coverage of the bootstrap carried by site summaries (issue 17), on data with a known truth.

Patients have a latent severity shared by their 1-4 ECGs (labels and scores correlate within
a patient), and their ECGs are spread at random over three sites. Each site hashes Poisson(1)
weights from the patient id (:func:`ecgaudit.summary.poisson_weights`) into replicate cells;
the pooled AUROC of every replicate is computed from the summed cells (Mann-Whitney with
ties in a bin counted 1/2) and the percentile interval is checked against the AUROC of the
generating process (a 400,000-ECG sample of it).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ecgaudit.summary import cell_table, grid_edges, poisson_weights

B = 100
EDGES = grid_edges(1024, 0.5)


def draw(rng: np.random.Generator, n_patients: int) -> tuple[np.ndarray, ...]:
    k = rng.integers(1, 5, n_patients)
    pat = np.repeat(np.arange(n_patients), k)
    u = rng.normal(size=n_patients)[pat]
    y = (u + rng.normal(0, 0.7, pat.size) > 0.8).astype(np.int8)
    p = 1 / (1 + np.exp(-(0.8 * y + 1.2 * u - 1.0 + rng.normal(0, 0.6, pat.size))))
    return pat, y, p


def auroc_from_cells(neg: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """AUROC of every column of (bins, R) negative and positive counts."""
    below = np.cumsum(neg, axis=0) - neg
    num = (pos * (below + 0.5 * neg)).sum(axis=0)
    return num / (pos.sum(axis=0) * neg.sum(axis=0))


def interval(rng: np.random.Generator, seed: int) -> tuple[float, float]:
    pat, y, p = draw(rng, 250)
    site = rng.integers(0, 3, pat.size)
    ids = np.array([f"p{i}" for i in pat])
    neg = np.zeros((EDGES.size - 1, B))
    pos = np.zeros((EDGES.size - 1, B))
    for s in range(3):
        m = site == s
        cells = cell_table([("t", y[m], p[m], EDGES)], {"site": np.full(m.sum(), str(s))},
                           poisson_weights(ids[m], B, seed))
        reps = cells[[f"r:{k}" for k in range(B)]].to_numpy()
        for lab, acc in ((0, neg), (1, pos)):
            sel = (cells.label == lab).to_numpy()
            np.add.at(acc, cells.bin.to_numpy()[sel], reps[sel])
    a = auroc_from_cells(neg, pos)
    return float(np.quantile(a, 0.025)), float(np.quantile(a, 0.975))


@pytest.mark.slow
def test_patient_hashed_replicates_from_sites_cover_the_true_auroc() -> None:
    rng = np.random.default_rng(2024)
    _, y, p = draw(rng, 160_000)
    truth = roc_auc_score(y, p)
    n_sim = 120
    hits = 0
    for i in range(n_sim):
        lo, hi = interval(np.random.default_rng(i), seed=i)
        hits += lo <= truth <= hi
    print(f"coverage of AUROC {truth:.4f}: {hits / n_sim:.3f}")
    assert 0.90 <= hits / n_sim <= 0.99  # nominal 0.95; +-0.04 is 2 binomial SE
