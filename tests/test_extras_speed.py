"""The faster extras path gives exactly the numbers of the straightforward one (issue 19)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaudit.cohort import build_cohort
from ecgaudit.config import AttributeConfig, AuditConfig, TaskConfig
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.io import InputTable
from ecgaudit.metrics import _calsuite
from ecgaudit.metrics._calsuite import binned_lowess_fit, calibration_suite
from ecgaudit.pipeline import _extras
from ecgaudit.validate import prepare


def _setup(n: int):
    frame = make_synthetic_cohort(n, seed=3, tasks=["a"]).frame
    cfg = AuditConfig(tasks=[TaskConfig(name="a", label="y_a", score="p_a")],
                      attributes={"race": AttributeConfig(), "sex": AttributeConfig(),
                                  "age": AttributeConfig(kind="age")})
    prepared = prepare(InputTable(frame=frame, name="t", sha256=""), cfg).frame
    return prepared, build_cohort(prepared, cfg), cfg


def test_groups_split_by_radix_sort_match_masks() -> None:
    """Every group's rows (score order) and its suite equal the per-group mask version."""
    frame, cohort, cfg = _setup(30_000)
    units = {g.attribute: g.sizes() for g in cohort.groupings}
    strata = _extras._strata(cohort.groupings, cohort.n)
    panels, rows = _extras._task_curves_and_suite(frame, "a", cohort.groupings, units, cfg,
                                                  strata)
    y, p = frame["y:a"].to_numpy(), frame["p:a"].to_numpy()
    order = np.argsort(p, kind="stable")
    expected = []
    for g in cohort.groupings:
        codes = g.codes[order]
        for i, name in enumerate(g.groups):
            if units[g.attribute][i] < cfg.min_cell_size:
                continue
            idx = order[codes == i]
            fit = {} if len(g.components) <= 1 else _extras.INTERSECTION_FIT
            expected.append({"task": "a", "attribute": g.attribute, "group": name,
                             **calibration_suite(y[idx], p[idx], **fit)})
    assert repr(rows) == repr(expected)  # bit for bit, nan included
    assert any(r["attribute"] == "race & sex" for r in rows) and "race" in panels
    same = _extras._task_curves_and_suite(frame, "a", cohort.groupings, units, cfg, None)
    assert repr(same) == repr((panels, rows))  # without strata (too many cells): same


@pytest.mark.parametrize("n, grid", [(200_000, 400), (20_000, 100), (3_000, 37)])
def test_binned_fit_blocks_do_not_change_bits(monkeypatch, n: int, grid: int) -> None:
    rng = np.random.default_rng(n)
    x = np.sort(rng.beta(2, 5, n))
    y = (rng.random(n) < x ** 1.3).astype(float)
    xv = np.unique(np.quantile(x, np.linspace(0, 1, grid)))
    blocked = binned_lowess_fit(x, y, 2 / 3, xv, compiled=False)  # the numpy reference
    monkeypatch.setattr(_calsuite, "_BLOCK_ROWS", 1 << 20)  # one block of every point
    whole = binned_lowess_fit(x, y, 2 / 3, xv, compiled=False)
    assert blocked.tobytes() == whole.tobytes()


def test_progress_line_and_manifest_name_the_bootstrap_mode(monkeypatch) -> None:
    """Above the auto threshold the bootstrap step says 'binned' and the manifest why."""
    import ecgaudit
    from ecgaudit.pipeline import _bootstrap
    from ecgaudit.pipeline._bootstrap import NO_BINARY, choose_bins

    frame = make_synthetic_cohort(600, seed=1, tasks=["a"]).frame
    cfg = {"tasks": [{"name": "a", "label": "y_a", "score": "p_a"}],
           "attributes": {"sex": {}}, "bootstrap": 3}
    monkeypatch.setattr(_bootstrap, "AUTO_BIN_ROW_TASKS", 500)
    events: list[str] = []
    res = ecgaudit.audit(frame, cfg, progress=lambda step, i, n: events.append(step))
    step = next(s for s in events if s.startswith("bootstrap: 3 replicates"))
    assert "binned, 4096 bins" in step and "600 rows x 1 tasks > 500" in step
    assert res.manifest["bootstrap_bins"]["bins"] == 4096
    events.clear()
    ecgaudit.audit(frame, {**cfg, "bootstrap_bins": "exact"},
                   progress=lambda step, i, n: events.append(step))
    assert any(s.startswith("bootstrap: 3 replicates (exact") for s in events)
    assert choose_bins(AuditConfig(**{**cfg, "tasks": cfg["tasks"]}), 10**6, 0)["reason"] \
        == NO_BINARY
