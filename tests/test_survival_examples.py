"""The bundled survival examples: the real WHAS500 audit and the planted synthetic cohort."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ecgaudit
from ecgaudit.config import load_config

ROOT = Path(__file__).resolve().parents[1] / "examples"


def _config(folder: str, **overrides):
    cfg = load_config(ROOT / folder / "audit.yaml").to_dict()
    cfg.update(overrides)
    return cfg


def test_whas500_matches_scikit_survival_per_group():
    metrics = pytest.importorskip("sksurv.metrics")
    data = pd.read_csv(ROOT / "survival_whas500" / "whas500_scored.csv")
    r = ecgaudit.audit_files(ROOT / "survival_whas500" / "whas500_scored.csv",
                             _config("survival_whas500", bootstrap=0))
    m = r.metrics[(r.metrics.task == "cox_mortality") & (r.metrics.metric == "harrell_c")]
    for sex in ("female", "male"):
        sub = data[data.sex == sex]
        ref = metrics.concordance_index_censored(sub.died.astype(bool), sub.lenfol_days,
                                                 sub.cox_risk)[0]
        assert m[m.group == sex].estimate.iloc[0] == pytest.approx(ref, abs=1e-12)


@pytest.mark.slow
def test_synthetic_cohort_shows_the_planted_differences():
    r = ecgaudit.audit_files(ROOT / "survival_synthetic" / "cohort.csv",
                             _config("survival_synthetic", bootstrap=100))
    d = r.disparities
    black = d[(d.task == "af_risk") & (d.group == "Black") & (d.metric == "harrell_c")].iloc[0]
    assert black.difference_ci_high < 0 and black.p_holm < 0.05
    auc = d[(d.task == "af_risk") & (d.group == "Black") & (d.metric == "td_auroc")]
    assert (auc.difference_ci_high < 0).all()
    women = d[(d.task == "af_1y") & (d.group == "female") & (d.metric == "oe_ratio")].iloc[0]
    assert women.difference_ci_low > 0
    # no planted difference for Asian patients: the interval covers 0
    asian = d[(d.task == "af_risk") & (d.group == "Asian") & (d.metric == "harrell_c")].iloc[0]
    assert asian.difference_ci_low < 0 < asian.difference_ci_high
    assert np.isfinite(r.metrics.estimate).any()
