"""BCa intervals of survival metrics (``bootstrap_method: bca``), against scipy's BCa."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import ecgaudit
from ecgaudit.metrics._survaudit import SurvTask, survival_audit
from ecgaudit.metrics._survival import metric_keys
from ecgaudit.registry import REGISTRY

HORIZONS = (365.0, 900.0)


@dataclass
class _G:
    attribute: str
    codes: np.ndarray
    groups: tuple[str, ...]
    reference: int | None


def _data(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    te = rng.weibull(1.2, n) * 900 * np.exp(-0.7 * x)
    tc = rng.uniform(300, 2000, n)
    return {"t": np.round(np.minimum(te, tc), 1), "e": (te <= tc).astype(np.int8),
            "risk": x, "p": 1 / (1 + np.exp(-(x - 0.3)))}


def _audit(d: dict[str, np.ndarray], groupings: list[_G], method: str, n_boot: int = 400,
           patient: np.ndarray | None = None, compiled: bool | None = None):
    task = SurvTask("death", d["t"], d["e"], d["p"], d["p"], 0.4, HORIZONS)
    return survival_audit([task], groupings, patient, level=0.95, min_events=5,
                          n_boot=n_boot, seed=7, max_degenerate=0.05, compiled=compiled,
                          method=method)


@pytest.mark.parametrize(("metric", "horizon"), [("harrell_c", None), ("td_auroc", 365.0),
                                                 ("brier", 900.0), ("oe_ratio", 365.0)])
def test_bca_limits_equal_scipy_bca_on_the_same_replicates(metric, horizon) -> None:
    """80 patients, one group: the 80 jackknife blocks are scipy's delete-one jackknife.

    scipy gets the audit's own bootstrap distribution (``bootstrap_result``, no new draws)
    and computes the bias correction, the jackknife acceleration (with scikit-survival's
    statistic, the registry's reference) and the limits itself.
    """
    pytest.importorskip("sksurv")
    n = 80
    d = _data(n, seed=1)
    overall = [_G("overall", np.zeros(n, np.int64), ("all",), None)]
    rows, _, cells = _audit(d, overall, "bca")
    j = metric_keys(HORIZONS).index((metric, horizon))
    row = next(r for r in rows if r["metric"] == metric and r["horizon"] == horizon)
    assert row["ci_method"] == "bootstrap-bca" and not row["reason"]
    ref = REGISTRY.get(metric, "survival").reference

    def statistic(i: np.ndarray) -> float:
        i = np.asarray(i, dtype=np.int64)
        return ref(d["t"][i], d["e"][i], d["p"][i], d["p"][i], horizon, HORIZONS)

    reps = np.concatenate(cells[0].reps)[:, j]
    assert np.isfinite(reps).all()
    res = stats.bootstrap((np.arange(n),), statistic, n_resamples=0, vectorized=False,
                          bootstrap_result=SimpleNamespace(bootstrap_distribution=reps),
                          method="BCa", confidence_level=0.95)
    assert row["estimate"] == pytest.approx(statistic(np.arange(n)), rel=1e-9)
    assert row["ci_low"] == pytest.approx(res.confidence_interval.low, rel=1e-7)
    assert row["ci_high"] == pytest.approx(res.confidence_interval.high, rel=1e-7)
    pct = np.percentile(reps, [2.5, 97.5])
    assert (row["ci_low"], row["ci_high"]) != pytest.approx(tuple(pct), rel=1e-9)


def test_percentile_rows_do_not_change_and_bca_differences() -> None:
    n = 240
    d = _data(n, seed=2)
    sex = np.arange(n) % 2
    groupings = [_G("overall", np.zeros(n, np.int64), ("all",), None),
                 _G("sex", sex.astype(np.int64), ("f", "m"), 0)]
    patient = (np.arange(n) // 4) * 2 + sex  # rows i, i + 2: one patient, one sex
    assert np.bincount(patient).tolist() == [2] * (n // 2)
    pct_m, pct_d, _ = _audit(d, groupings, "percentile", patient=patient)
    bca_m, bca_d, cells = _audit(d, groupings, "bca", patient=patient)
    # same replicates and estimates; only the interval method differs
    for a, b in zip(pct_m, bca_m):
        assert a["estimate"] == b["estimate"] or np.isnan(a["estimate"])
        assert a["ci_method"] in ("bootstrap-percentile", "none")
        if a["ci_method"] == "bootstrap-percentile":
            assert b["ci_method"] == "bootstrap-bca"
    assert all(c.jack is not None and c.jack.shape[0] == 100 for c in cells)
    # jackknife of patients: 120 patients in 100 blocks, both rows of a patient together
    c_td = next(r for r in bca_d if r["metric"] == "td_auroc" and r["horizon"] == 365.0)
    p_td = next(r for r in pct_d if r["metric"] == "td_auroc" and r["horizon"] == 365.0)
    assert c_td["ci_method"] == "bootstrap-bca" and p_td["ci_method"] == "bootstrap-percentile"
    assert c_td["difference"] == p_td["difference"]
    assert c_td["difference_ci_low"] < c_td["difference"] < c_td["difference_ci_high"]
    assert (c_td["difference_ci_low"], c_td["difference_ci_high"]) != (
        p_td["difference_ci_low"], p_td["difference_ci_high"])
    # the BCa p-value inverts the BCa interval: it excludes 0 exactly when p < 0.05
    for r in bca_d:
        if r["ci_method"] == "bootstrap-bca" and r["test"] == "bootstrap":
            excludes = r["difference_ci_low"] > 0 or r["difference_ci_high"] < 0
            assert excludes == (r["p_value"] < 0.05), r["metric"]


@pytest.mark.parametrize("compiled", [False, True])
def test_engines_agree_on_bca(compiled: bool) -> None:
    from ecgaudit.metrics import _kernels

    if compiled and not _kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    d = _data(120, seed=3)
    overall = [_G("overall", np.zeros(120, np.int64), ("all",), None)]
    got, _, _ = _audit(d, overall, "bca", n_boot=60, compiled=compiled)
    ref, _, _ = _audit(d, overall, "bca", n_boot=60, compiled=not compiled)
    for a, b in zip(got, ref):
        for k in ("ci_low", "ci_high"):
            assert a[k] == pytest.approx(b[k], rel=1e-7, nan_ok=True), a["metric"]


def test_audit_config_bca_reaches_survival_rows() -> None:
    d = _data(200, seed=4)
    df = pd.DataFrame(d).assign(sex=np.where(np.arange(200) % 2, "m", "f"))
    cfg = {"tasks": [{"name": "death", "kind": "survival", "time": "t", "event": "e",
                      "score": "p", "horizons": list(HORIZONS)}],
           "attributes": {"sex": {"column": "sex", "reference": "f"}},
           "bootstrap": 50, "bootstrap_method": "bca", "seed": 1}
    r = ecgaudit.audit(df, cfg)
    boot = r.metrics[r.metrics.ci_method.str.startswith("bootstrap")]
    assert len(boot) and set(boot.ci_method) == {"bootstrap-bca"}
    assert set(r.disparities.loc[r.disparities.ci_method.str.startswith("bootstrap"),
                                 "ci_method"]) == {"bootstrap-bca"}


@pytest.mark.slow
def test_bca_coverage_td_auroc() -> None:
    """The Weibull design of tests/test_survival_coverage.py with BCa (about 10 s).

    Measured (200 cohorts, B = 200): 93.5% at n = 500 (percentile: 93.5%), 89.5% at
    n = 250 (percentile: 88.0%). 120 cohorts here: binomial SE about 2.5 points.
    """
    from tests.test_survival_coverage import _G as _G2
    from tests.test_survival_coverage import _draw, _truth

    _, auc = _truth(1.0, 1.0)
    rng = np.random.default_rng(2)
    hits, cohorts = 0, 120
    for i in range(cohorts):
        t, e, x = _draw(rng, 500, 1.0)
        task = SurvTask("t", t, e, x, None, 0.5, (1.0,))
        m, _, _ = survival_audit([task], [_G2(np.zeros(500, np.int64))], None, level=0.95,
                                 min_events=1, n_boot=200, seed=i, max_degenerate=0.05,
                                 method="bca")
        row = next(r for r in m if r["metric"] == "td_auroc" and r["group"] == "a")
        assert row["ci_method"] == "bootstrap-bca"
        hits += row["ci_low"] <= auc <= row["ci_high"]
    assert 0.90 <= hits / cohorts <= 0.99
