"""The pooled audit computed on the cells (issue 17) equals the pseudo-row reference path.

``audit_summaries`` computes on the cells (``pipeline/_cellaudit.py``); the reference is
``_audit_summaries_rows``, the row-level audit of one pseudo-row per ECG. On many splits into
sites both must give the same ``results.json``: every string, count, status and reason
identical, every number to 1e-12 (absolute, relative above 1); the manifest differs only in
the input's digest (of the pooled cells, not of an expanded frame) and ``pooled_engine``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ecgaudit.config import parse_config
from ecgaudit.errors import InputError
from ecgaudit.metrics._bootstrap import Grouping
from ecgaudit.metrics._cellengine import TaskCells
from ecgaudit.metrics._cellpoints import CellSession
from ecgaudit.metrics._delong import delong_auc_variance
from ecgaudit.metrics._suffstats import EXTENDED_INDEX
from ecgaudit.pipeline._cellaudit import cells_digest
from ecgaudit.pipeline._fromsummaries import (
    _audit_summaries_rows,
    audit_summaries,
    pool_cells,
    pooled_route,
)
from ecgaudit.pipeline._summaries import summarize
from ecgaudit.summary import attribute_column
from tests.test_summaries import cohort, config, site_summaries

TOL = 1e-12
#: Manifest leaves that name the route and the input's digest (by design not the same).
ROUTE_LEAVES = {("manifest", "inputs", 0, "sha256"), ("manifest", "pooled_engine")}


def _walk(a: Any, b: Any, path: tuple = ()) -> list[str]:
    """Differences between two JSON trees (numbers to TOL)."""
    if path in ROUTE_LEAVES:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a.keys() ^ b.keys())}"]
        return [d for k in a for d in _walk(a[k], b[k], (*path, k))]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _walk(x, y, (*path, i))]
    if isinstance(a, float) or isinstance(b, float):
        if type(a) is not type(b) and not (isinstance(a, float) and isinstance(b, float)):
            return [f"{path}: {a!r} vs {b!r}"]
        if math.isnan(a) or math.isnan(b):
            return [] if math.isnan(a) and math.isnan(b) else [f"{path}: {a} vs {b}"]
        ok = abs(a - b) <= TOL * max(1.0, abs(a), abs(b))
        return [] if ok else [f"{path}: {a!r} vs {b!r}"]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} vs {b!r}"]


def _results(result: Any, out: Path) -> dict:
    result.save(out)
    return json.loads((out / "results.json").read_text())


def _assert_same(summaries: list, cfg: dict, tmp_path: Path) -> tuple[dict, dict]:
    cells = _results(audit_summaries(summaries, cfg), tmp_path / "cells")
    rows = _results(_audit_summaries_rows(summaries, cfg), tmp_path / "rows")
    diffs = _walk(rows, cells)
    assert not diffs, diffs[:20]
    assert cells["manifest"]["pooled_engine"] == "cells"
    assert rows["manifest"]["pooled_engine"].startswith("rows")
    return cells, rows


def _sites(n: int, probs: list[float], seed: int = 1) -> np.ndarray:
    names = np.array([f"s{i}" for i in range(len(probs))])
    return names[np.random.default_rng(seed).choice(len(probs), n, p=probs)]


@pytest.mark.parametrize(("n", "probs", "boot"), [
    (900, [0.6, 0.3, 0.1], 0),         # uneven sites, closed forms only
    (900, [0.6, 0.3, 0.1], 40),        # drawn per cell
    (700, [0.97, 0.02, 0.01], 30),     # tiny sites (a few ECGs each)
    (400, [1.0], 0),                   # one site
    pytest.param(14000, [0.7, 0.3], 20,  # groups above max_exact: suites from runs
                 marks=pytest.mark.slow),
])
def test_cells_equal_pseudo_rows(n: int, probs: list[float], boot: int, tmp_path: Path) -> None:
    df = cohort(n)
    cells, _ = _assert_same(site_summaries(df, _sites(n, probs)), config(bootstrap=boot),
                            tmp_path)
    assert cells["manifest"]["n_ecgs"] == n
    assert cells["manifest"]["inputs"][0]["rows"] == n


def test_replicate_columns_equal(tmp_path: Path) -> None:
    """Given replicate counts (the sites' patient-hashed Poisson weights) on both paths."""
    df = cohort(800, seed=5)
    _assert_same(site_summaries(df, _sites(800, [0.5, 0.5]), replicates=30),
                 config(bootstrap=30), tmp_path)


def test_small_groups_suppressed_identically(tmp_path: Path) -> None:
    """Groups under the min-cell rule, a site without one race, suppression the same."""
    df = cohort(600, seed=7)
    sites = _sites(600, [0.8, 0.2], seed=2)
    df.loc[(sites == "s1") & (df["race"] == "Asian"), "race"] = "White"  # empty in s1
    cells, _ = _assert_same(site_summaries(df, sites), config(min_cell_size=40), tmp_path)
    assert cells["extras"]["suppression"]["min_cell_size"] == 40
    statuses = {m["status"] for m in cells["metrics"]}
    assert "suppressed" in statuses


def test_separated_and_constant_scores(tmp_path: Path) -> None:
    """Separated scores (no recalibration fit) and a site whose scores are all equal."""
    df = cohort(500, seed=9)
    df["p1"] = np.where(df["y1"] == 1, 0.9, 0.1)  # perfectly separated: fits undefined
    sites = _sites(500, [0.7, 0.3], seed=4)
    df.loc[sites == "s1", "p2"] = 0.4  # all-equal scores in one site
    cells, _ = _assert_same(site_summaries(df, sites), config(bootstrap=20), tmp_path)
    reasons = {m["reason"] for m in cells["metrics"]
               if m["metric"] == "cal_slope" and m["task"] == "t1"}
    assert any("separat" in r for r in reasons)


def test_cell_session_against_independent_references() -> None:
    """AUROC (scikit-learn) and DeLong variance (ranks, scipy) of the cells' ECGs."""
    rng = np.random.default_rng(0)
    nb, n_strata = 40, 6
    rep = np.sort(rng.uniform(0.01, 0.99, nb))
    stratum = np.repeat(np.arange(n_strata), 2 * nb)
    bins = np.tile(np.repeat(np.arange(nb), 2), n_strata)
    label = np.tile([0, 1], n_strata * nb)
    n = rng.poisson(np.where(label == 1, 0.3 + bins / nb, 1.5 - bins / nb))
    cells = TaskCells(stratum, bins, label, n, rep, float(rep[nb // 2]))
    sex = np.array([0, 0, 0, 1, 1, 1])
    groupings = [Grouping("overall", np.zeros(n_strata, dtype=np.int64), ("overall",), None),
                 Grouping("sex", sex, ("female", "male"), 1)]
    session = CellSession(["t"], [cells], groupings, seed=1)
    for gi, g in enumerate(groupings):
        for k in range(len(g.groups)):
            mine = np.asarray(g.codes)[stratum] == k
            y = np.repeat(label[mine], n[mine])
            p = np.repeat(rep[bins[mine]], n[mine])
            ref_auc, ref_var = delong_auc_variance(y, p)
            auc = session.estimates[0][gi][EXTENDED_INDEX["auroc"], k]
            assert auc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
            assert auc == pytest.approx(ref_auc, abs=1e-12)
            assert session.delong[0][gi][k] == pytest.approx(ref_var, rel=1e-10)


def test_reproducible_and_digest_of_cells(tmp_path: Path) -> None:
    """Same summaries and seed: byte-identical JSON; the input digest is of the cells."""
    df = cohort(600)
    sites = _sites(600, [0.5, 0.3, 0.2])
    summaries = site_summaries(df, sites)
    a = audit_summaries(summaries, config(bootstrap=20))
    b = audit_summaries(list(reversed(summaries)), config(bootstrap=20))
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    ja = json.loads((tmp_path / "a" / "results.json").read_text())
    jb = json.loads((tmp_path / "b" / "results.json").read_text())
    strata = [attribute_column(x) for x in ("sex", "race", "age", "site")]
    assert ja["manifest"]["inputs"][0]["sha256"] == cells_digest(pool_cells(summaries), strata)
    assert ja["manifest"]["inputs"][0]["sha256"] == jb["manifest"]["inputs"][0]["sha256"]
    c = audit_summaries(summaries, config(bootstrap=20))
    c.save(tmp_path / "c")
    assert ((tmp_path / "a" / "results.json").read_bytes()
            == (tmp_path / "c" / "results.json").read_bytes())


def test_one_class_refused_like_rows() -> None:
    """A task without positives in the pooled cells: the row path's message, word for word."""
    df = cohort(300)
    df["y2"] = 0
    sites = np.array(["s0"] * 150 + ["s1"] * 150)
    summaries = [summarize(df[sites == s].reset_index(drop=True), config(), site=s)
                 for s in ("s0", "s1")]
    with pytest.raises(InputError) as cells_err:
        audit_summaries(summaries, config())
    with pytest.raises(InputError) as rows_err:
        _audit_summaries_rows(summaries, config())
    assert str(cells_err.value) == str(rows_err.value)
    assert "t2" in str(cells_err.value)


def test_control_takes_the_row_path() -> None:
    """Controlled comparisons need rows: decided up front, recorded in the manifest."""
    cfg = config(control=["sex"])
    assert pooled_route(parse_config(cfg)).startswith("rows")
    df = cohort(400)
    res = audit_summaries(site_summaries(df, _sites(400, [0.5, 0.5])), cfg)
    assert res.manifest["pooled_engine"].startswith("rows: controlled")


def test_cells_route_never_expands_large_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pseudo-row frame; only groups within ``max_exact`` reach the row functions."""
    import ecgaudit.pipeline._cellaudit as cellaudit
    import ecgaudit.pipeline._fromsummaries as fromsummaries

    def no_rows(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the cells route expanded the cells to pseudo-rows")

    sizes: list[tuple[int, int]] = []
    suite = cellaudit.calibration_suite

    def spy(y: np.ndarray, p: np.ndarray, **kw: Any) -> dict:
        sizes.append((y.size, kw.get("max_exact", 5000)))
        return suite(y, p, **kw)

    monkeypatch.setattr(fromsummaries, "_expand", no_rows)
    monkeypatch.setattr(cellaudit, "calibration_suite", spy)
    df = cohort(12000)
    res = audit_summaries(site_summaries(df, _sites(12000, [0.7, 0.3])), config())
    assert res.manifest["pooled_engine"] == "cells"
    assert sizes and all(n <= limit for n, limit in sizes)
    assert len(res.extras["calibration_suite"]) > len(sizes)  # the rest from runs


def test_progress_steps_as_the_row_path() -> None:
    """The same progress steps, in the same order, on both paths."""
    df = cohort(500)
    summaries = site_summaries(df, _sites(500, [0.5, 0.5]))
    seen: dict[str, list] = {"cells": [], "rows": []}
    audit_summaries(summaries, config(bootstrap=10),
                    progress=lambda *a: seen["cells"].append(a))
    _audit_summaries_rows(summaries, config(bootstrap=10),
                          progress=lambda *a: seen["rows"].append(a))
    assert seen["cells"] == seen["rows"] and len(seen["cells"]) > 3
