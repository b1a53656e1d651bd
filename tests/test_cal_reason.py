"""An undefined recalibration fit says why, in the audit's tables, on every engine.

The exact path (:func:`~ecgaudit.metrics.logistic_recalibration`) gives a specific reason
('all scores are equal', 'scores separate the classes perfectly ...'); the engines of the
audit give the same words (``metrics/_points.py``), whatever the engine or binning.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ecgaudit
from ecgaudit.metrics import _kernels
from ecgaudit.metrics._calibration import (
    REASON_EQUAL,
    REASON_NO_CONVERGENCE,
    REASON_SEPARATED,
    calibration_logit,
    logistic_recalibration,
    no_fit_reason,
)

ENGINES = ["numpy", "compiled"] if _kernels.HAVE_NUMBA else ["numpy"]


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 90  # 30 rows per site: a normal site, one with equal scores, one separated
    y = np.tile([0, 1, 0], n // 3)
    p = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, n), 0.02, 0.98)
    site = np.repeat(["A", "B", "C"], n // 3)
    p[site == "B"] = 0.4
    sep = site == "C"
    p[sep] = np.where(y[sep] == 1, 0.8, 0.2) + rng.uniform(0, 0.05, sep.sum())
    return pd.DataFrame({"y": y, "p": p, "site": site})


def _config(engine: str, bins: object = None) -> dict:
    return {"tasks": [{"name": "t", "label": "y", "score": "p"}],
            "attributes": {"site": {"reference": "A"}}, "threshold": {"rule": "fixed",
            "value": 0.5}, "min_cell_size": 11, "bootstrap": 0, "engine": engine,
            "bootstrap_bins": bins}


@pytest.mark.parametrize("engine", ENGINES)
def test_audit_rows_name_the_reason(engine: str) -> None:
    m = ecgaudit.audit(_frame(), _config(engine)).metrics
    cal = m[m.metric.isin(["cal_intercept", "cal_slope"])].set_index(["group", "metric"])
    for metric in ("cal_intercept", "cal_slope"):
        assert cal.loc[("A", metric), "status"] in ("ok", "unstable")
        assert cal.loc[("B", metric), "status"] == "insufficient"
        assert cal.loc[("B", metric), "reason"] == REASON_EQUAL
        assert cal.loc[("C", metric), "reason"] == REASON_SEPARATED
    f = _frame()
    for site, reason in (("B", REASON_EQUAL), ("C", REASON_SEPARATED)):  # the exact path
        rows = f[f.site == site]
        assert logistic_recalibration(rows.y.to_numpy(), rows.p.to_numpy()).reason == reason


def test_binned_bootstrap_audit_names_the_reason() -> None:
    cfg = _config(ENGINES[-1], bins=4096) | {"bootstrap": 20}
    m = ecgaudit.audit(_frame(), cfg).metrics
    row = m[(m.metric == "cal_slope") & (m.group == "C")].iloc[0]
    assert row.status == "insufficient" and row.reason == REASON_SEPARATED


def test_no_fit_reason_checks() -> None:
    y = np.array([0, 1, 0, 1])
    assert no_fit_reason(y, np.zeros(4)) == REASON_EQUAL
    assert no_fit_reason(y, np.array([0.0, 2.0, 1.0, 3.0])) == REASON_SEPARATED
    assert no_fit_reason(y, np.array([0.0, 2.0, 3.0, 1.0])) == ""  # overlapping classes
    # a weight of 0 drops the row that made the classes overlap
    w = np.array([1, 1, 0, 1])
    assert no_fit_reason(y, np.array([0.0, 2.0, 3.0, 1.0]), w) == REASON_SEPARATED
    assert REASON_NO_CONVERGENCE != REASON_SEPARATED
    x = calibration_logit(np.array([0.2, 0.7, 0.4, 0.9]))
    assert no_fit_reason(y, x) == REASON_SEPARATED
