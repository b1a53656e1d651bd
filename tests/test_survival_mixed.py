"""One audit config with binary, continuous and survival tasks: one table, one report."""

from __future__ import annotations

import numpy as np
import pandas as pd

import ecgaudit


def _frame(n=900, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    te = rng.weibull(1.2, n) * 900 * np.exp(-0.6 * x)
    tc = rng.uniform(200, 2000, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(x - 0.5)))).astype(int)
    return pd.DataFrame({
        "t": np.round(np.minimum(te, tc), 1), "e": (te <= tc).astype(int),
        "p_surv": 1 / (1 + np.exp(-(x - 0.4))), "afib": y,
        "p_afib": np.clip(1 / (1 + np.exp(-(x - 0.5))) + rng.normal(0, 0.05, n), 0.001, 0.999),
        "lvef": 55 + 8 * x + rng.normal(0, 4, n), "lvef_hat": 55 + 8 * x + rng.normal(0, 5, n),
        "sex": np.where(np.arange(n) % 2 == 0, "female", "male"),
        "site": np.where(np.arange(n) % 3 == 0, "B", "A"),
    })


def _config(**kw):
    return {"tasks": [
        {"name": "afib", "label": "afib", "score": "p_afib"},
        {"name": "death", "kind": "survival", "time": "t", "event": "e", "score": "p_surv",
         "horizons": [365, 900]},
        {"name": "ef", "kind": "continuous", "label": "lvef", "score": "lvef_hat"}],
        "attributes": {"sex": {"column": "sex"}, "site": {}},
        "threshold": {"rule": "youden"},
        "task_thresholds": {"death": {"rule": "fixed", "value": 0.4}}, **kw}


def test_mixed_config_gives_one_table_equal_to_the_separate_audits():
    df = _frame()
    cfg = _config(bootstrap=0)
    mixed = ecgaudit.audit(df, cfg)
    assert set(mixed.metrics.task) == {"afib", "death", "ef"}
    surv_only = ecgaudit.audit(df, {**cfg, "tasks": [cfg["tasks"][1]]})
    bin_only = ecgaudit.audit(df, {**cfg, "tasks": [cfg["tasks"][0], cfg["tasks"][2]],
                                   "task_thresholds": {}})
    key = ["task", "attribute", "group", "metric", "horizon"]
    for part in (surv_only, bin_only):
        got = mixed.metrics.merge(part.metrics, on=key, suffixes=("", "_ref"))
        assert len(got) == len(part.metrics)
        np.testing.assert_allclose(got.estimate.astype(float), got.estimate_ref.astype(float),
                                   rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(got.ci_low.astype(float), got.ci_low_ref.astype(float),
                                   rtol=1e-12, equal_nan=True)
    h = mixed.metrics[mixed.metrics.task == "death"]
    assert set(h.loc[h.metric == "td_auroc", "horizon"]) == {365.0, 900.0}
    assert mixed.metrics.loc[mixed.metrics.task == "afib", "horizon"].isna().all()
    # one multiplicity family over every task's tests
    d = mixed.disparities
    assert {"afib", "death"} <= set(d.task)
    assert "survival_curves" in mixed.extras and "death" in mixed.extras["survival_curves"]


def test_mixed_config_report_has_binary_and_survival_sections(tmp_path):
    cfg = _config(bootstrap=0)
    res = ecgaudit.audit(_frame(n=400, seed=1), {**cfg, "tasks": cfg["tasks"][:2]})
    res.save(tmp_path / "out", report=True)
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert 'id="survival"' in html
    assert 'data-task="death"' in html and 'data-task="afib"' not in html.split(
        'id="survival"')[1].split("</section>")[0]
    assert "afib" in html
