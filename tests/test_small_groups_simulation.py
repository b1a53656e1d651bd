"""Coverage of the audit's reported intervals in small groups, by simulation.

Hundreds of small cohorts (n = 15, 30 or 60 ECGs; 40% prevalence) are stacked as the groups
of one attribute and audited in one run, so every group's interval is exactly what the
audit reports. Binormal scores with separation ``d`` have true AUROC ``Phi(d / sqrt 2)``;
at a frozen threshold ``t`` on the logit the true sensitivity is ``Phi(d - t)`` and the true
specificity ``Phi(t)``. Three tasks put the AUROC at 0.90, 0.95 and 0.99 and the rates near
0 and 1 (specificity 0.99, sensitivity 0.95, FPR 0.01). With repeated ECGs, patients have 1-5
ECGs that share half of the score variance.

Every interval method must cover the truth in >= 93% of groups (pooled over sizes) and no
interval may have zero width; the difference intervals (every cohort against the reference
cohort, all with the same truth) must contain 0 in >= 93% of comparisons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, ndtr, ndtri

import ecgaudit

COHORTS = 600
#: task -> (true AUROC, threshold on the logit scale)
SPECS = {"a90": (0.90, 0.1), "a95": (0.95, 2.33), "a99": (0.99, 1.645)}
RATES = ("sensitivity", "specificity", "fnr", "fpr")


def _cohorts(seed: int, clustered: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for c in range(COHORTS):
        n = (15, 30, 60)[c % 3]
        if clustered:  # 1-5 ECGs per patient
            sizes = rng.integers(1, 6, n)
            pat = np.repeat(np.arange(n), sizes)[:n]
        else:
            pat = np.arange(n)
        y = (rng.random(n) < 0.4).astype(int)
        y[:2], y[-2:] = 1, 0  # both classes in every cohort
        frame = {"cohort": f"c{c:04d}", "pid": [f"{c}-{p}" for p in pat], "y": y}
        shared = rng.normal(size=pat.max() + 1)[pat]
        for name, (auc, _) in SPECS.items():
            noise = rng.normal(size=n)
            x = np.sqrt(0.5) * shared + np.sqrt(0.5) * noise if clustered else noise
            frame[f"p_{name}"] = expit(x + np.sqrt(2) * ndtri(auc) * y)
        parts.append(pd.DataFrame(frame))
    return pd.concat(parts, ignore_index=True)


def _truth(task: str) -> dict[str, float]:
    auc, t = SPECS[task]
    d = np.sqrt(2) * ndtri(auc)
    return {"auroc": auc, "sensitivity": ndtr(d - t), "fnr": 1 - ndtr(d - t),
            "specificity": ndtr(t), "fpr": 1 - ndtr(t)}


@pytest.mark.slow
@pytest.mark.parametrize("clustered", [False, True], ids=["independent", "repeated-ecgs"])
def test_small_group_intervals_cover_and_never_have_zero_width(clustered: bool) -> None:
    frame = _cohorts(11 + clustered, clustered)
    config = {
        "tasks": [{"name": k, "label": "y", "score": f"p_{k}"} for k in SPECS],
        "attributes": {"cohort": {}}, "intersections": "none", "min_cell_size": 1,
        "max_groups": 1000,  # one group per simulated study
        "bootstrap": 50 if clustered else 0, "seed": 3,
        "task_thresholds": {k: {"rule": "fixed", "value": float(expit(t))}
                            for k, (_, t) in SPECS.items()},
    }
    if clustered:
        config["patient_column"] = "pid"
    result = ecgaudit.audit(frame, config)
    m, d = result.metrics, result.disparities
    assert not ((m.ci_low == m.ci_high) & m.ci_low.notna()).any()
    assert not ((d.difference_ci_low == d.difference_ci_high)
                & d.difference_ci_low.notna()).any()
    assert not ((d.ratio_ci_low == d.ratio_ci_high) & d.ratio_ci_low.notna()).any()
    groups = m[m.attribute == "cohort"]
    for task in SPECS:
        for metric, truth in _truth(task).items():
            rows = groups[(groups.task == task) & (groups.metric == metric)]
            assert len(rows) == COHORTS and rows.ci_low.notna().all()
            suffix = "-clustered" if clustered else ""
            expected = ("newcombe-score" if metric == "auroc" else "wilson") + suffix
            assert set(rows.ci_method) == {expected}
            cover = ((rows.ci_low <= truth) & (truth <= rows.ci_high)).mean()
            assert cover >= 0.93, (task, metric, cover)
            diffs = d[(d.task == task) & (d.metric == metric)]
            zero_in = ((diffs.difference_ci_low <= 0) & (diffs.difference_ci_high >= 0))
            assert zero_in.mean() >= 0.93, (task, metric, zero_in.mean())
            # The inverted test agrees with the interval on every row.
            excludes = ~zero_in
            assert ((diffs.p_value < 0.05) == excludes).all()
