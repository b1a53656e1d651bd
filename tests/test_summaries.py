"""Summary files (issue 17): layout, versioning, refusal of tampered files, and the audit of
pooled site summaries against the row-level audit of the same (binned) rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from ecgaudit.errors import ConfigError, InputError
from ecgaudit.pipeline import audit
from ecgaudit.pipeline._fromsummaries import audit_summaries
from ecgaudit.pipeline._summaries import summarize
from ecgaudit.summary import (
    bin_index,
    content_digest_of,
    grid_edges,
    poisson_weights,
    read_summary,
    write_summary,
)

KEY = ["task", "attribute", "group", "metric"]
DKEY = ["task", "attribute", "group", "reference", "metric"]


def cohort(n: int = 900, seed: int = 3) -> pd.DataFrame:
    """Patients with 1-3 ECGs each, two tasks, three attributes (one with missing values)."""
    rng = np.random.default_rng(seed)
    n_pat = n // 2
    pat = np.sort(rng.integers(0, n_pat, n))
    risk = rng.normal(size=n_pat)[pat]
    sex = np.where(rng.random(n_pat) < 0.5, "female", "male")[pat]
    race = rng.choice(["Asian", "Black", "White"], n_pat, p=[0.15, 0.25, 0.6])[pat].astype(object)
    race[rng.random(n) < 0.03] = None
    age = np.round(rng.uniform(20, 95, n_pat))[pat]
    y1 = (rng.random(n) < 1 / (1 + np.exp(-(risk - 1)))).astype(int)
    y2 = (rng.random(n) < 0.3).astype(int)
    p1 = 1 / (1 + np.exp(-(1.5 * y1 + risk - 1.8 + rng.normal(0, 0.8, n))))
    p2 = np.clip(0.25 + 0.3 * y2 + rng.normal(0, 0.15, n), 0, 1)
    p2[:5] = [0.0, 1.0, 0.4, 0.4, 0.4]  # saturated scores and a score on the threshold
    return pd.DataFrame({"ecg_id": [f"e{i}" for i in range(n)],
                         "patient_id": [f"p{i}" for i in pat], "sex": sex, "race": race,
                         "age": age, "y1": y1, "p1": p1, "y2": y2, "p2": p2})


def config(**extra: object) -> dict:
    return {"id_column": "ecg_id", "patient_column": "patient_id",
            "tasks": [{"name": "t1", "label": "y1", "score": "p1"},
                      {"name": "t2", "label": "y2", "score": "p2"}],
            "attributes": {"sex": {"reference": "male"}, "race": {}, "age": {"kind": "age"}},
            "intersections": [["sex", "race"]],
            "task_thresholds": {"t1": {"rule": "fixed", "value": 0.3},
                                "t2": {"rule": "fixed", "value": 0.4}},
            "bootstrap": 0, "seed": 11, **extra}


def binned_rows(df: pd.DataFrame, sites: np.ndarray, bins: int = 1024) -> pd.DataFrame:
    """The row-level reference: scores replaced by their bin's mean on the shared grid."""
    out = df.assign(site=sites)
    for col, thr in (("p1", 0.3), ("p2", 0.4)):
        e = grid_edges(bins, thr)
        b = bin_index(out[col].to_numpy(), e)
        n = np.bincount(b, minlength=e.size - 1)
        s = np.bincount(b, weights=out[col].to_numpy(), minlength=e.size - 1)
        out[col] = (s / np.maximum(n, 1))[b]
    return out


def site_summaries(df: pd.DataFrame, sites: np.ndarray, **kw: object) -> list:
    return [summarize(df[sites == s].reset_index(drop=True), config(**kw.pop("cfg", {})),
                      site=str(s), **kw) for s in pd.unique(sites)]


def test_grid_has_the_threshold_as_an_edge_and_bins_by_the_stated_rule() -> None:
    e = grid_edges(64, 0.37)
    assert e[0] == 0.0 and e[-1] == 1.0 and 0.37 in e and np.all(np.diff(e) > 0)
    assert e.size == 64 + 2  # 64 bins, one more for the threshold edge
    k = int(np.flatnonzero(e == 0.37)[0])
    got = bin_index(np.array([0.0, np.nextafter(0.37, 0), 0.37, 1.0]), e)
    assert list(got) == [0, k - 1, k, e.size - 2]
    p = np.random.default_rng(0).random(1000)
    b = bin_index(p, e)
    assert np.all((e[b] <= p) & (p < e[b + 1]))
    assert np.array_equal(p >= 0.37, b >= k)  # threshold counts are exact


def test_summary_holds_counts_and_sums_and_no_identifiers(tmp_path) -> None:
    df = cohort()
    s = summarize(df, config(), site="A")
    c = s.cells
    assert list(c.columns) == ["task", "a:sex", "a:race", "a:age", "bin", "label", "n", "sum_p"]
    for t, y, p in (("t1", "y1", "p1"), ("t2", "y2", "p2")):
        mine = c[c.task == t]
        assert mine.n.sum() == len(df) and mine[mine.label == 1].n.sum() == df[y].sum()
        assert mine.sum_p.sum() == pytest.approx(df[p].sum(), rel=1e-12)
        fem = mine[mine["a:sex"] == "female"]
        assert fem.n.sum() == (df.sex == "female").sum()
    assert set(c["a:race"]) == {"Asian", "Black", "White", "Unknown"}
    path = write_summary(s, tmp_path / "a.summary")
    raw = path.read_bytes()
    for ident in ("e17", "p12", "ecg_id", "patient_id"):
        assert ident.encode() not in raw
    again = write_summary(summarize(df, config(), site="A"), tmp_path / "again.summary")
    assert again.read_bytes() == raw  # same inputs, byte-identical file
    back = read_summary(path)
    pd.testing.assert_frame_equal(back.cells, s.cells)
    assert back.header == s.header


def _rewrite(path, cells: pd.DataFrame, header: dict) -> None:
    table = pa.Table.from_pandas(cells, preserve_index=False)
    table = table.replace_schema_metadata({b"ecgaudit.summary": json.dumps(header).encode()})
    pq.write_table(table, path)


def test_tampered_old_and_foreign_files_are_refused(tmp_path) -> None:
    s = summarize(cohort(300), config(), site="A")
    path = write_summary(s, tmp_path / "a.summary")
    good = read_summary(path)
    edited = good.cells.copy()
    edited.loc[0, "n"] += 1
    _rewrite(tmp_path / "t.summary", edited, good.header)
    with pytest.raises(InputError, match=r"t\.summary: content_sha256"):
        read_summary(tmp_path / "t.summary")
    old = {**good.header, "version": 0}
    old["content_sha256"] = content_digest_of(old, good.cells)
    _rewrite(tmp_path / "old.summary", good.cells, old)
    with pytest.raises(InputError, match=r"old\.summary: version: schema version 0"):
        read_summary(tmp_path / "old.summary")
    grid = {**good.header, "tasks": [{**good.header["tasks"][0], "edges_sha256": "0" * 64},
                                     *good.header["tasks"][1:]]}
    grid["content_sha256"] = content_digest_of(grid, good.cells)
    _rewrite(tmp_path / "grid.summary", good.cells, grid)
    with pytest.raises(InputError, match=r"grid\.summary: tasks\.edges_sha256: .* task 't1'"):
        read_summary(tmp_path / "grid.summary")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "plain.parquet")
    with pytest.raises(InputError, match=r"plain\.parquet: header"):
        read_summary(tmp_path / "plain.parquet")
    (tmp_path / "junk.summary").write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"junk\.summary: file"):
        read_summary(tmp_path / "junk.summary")


def test_settings_a_site_cannot_apply_alone_are_refused() -> None:
    df = cohort(300)
    derived = config(task_thresholds={}, threshold={"rule": "sensitivity", "target": 0.9})
    with pytest.raises(ConfigError, match="fix it"):
        summarize(df, derived, site="A")
    a = summarize(df, config(), site="A")
    b = summarize(df, config(), site="B", bins=256)
    with pytest.raises(InputError, match=r"summary file B: grid"):
        audit_summaries([a, b], config())
    with pytest.raises(InputError, match="both are site 'A'"):
        audit_summaries([a, a], config())
    with pytest.raises(ConfigError, match="attribute 'site' is in the config"):
        audit_summaries([a], config(attributes={**config()["attributes"], "site": {}}))


SPLITS = {
    "even": lambda n, r: r.integers(0, 3, n),
    "uneven": lambda n, r: r.choice(3, n, p=[0.9, 0.08, 0.02]),
    "tiny": lambda n, r: np.where(np.arange(n) < 3, 4, r.choice(4, n, p=[0.5, 0.3, 0.15, 0.05])),
}


@pytest.mark.parametrize("split", [
    "even", pytest.param("uneven", marks=pytest.mark.slow), pytest.param("tiny", marks=pytest.mark.slow)])
def test_pooled_summaries_equal_the_row_level_binned_audit(split: str) -> None:
    df = cohort()
    sites = np.array([f"S{k}" for k in SPLITS[split](len(df), np.random.default_rng(5))])
    fed = audit_summaries(site_summaries(df, sites), config())
    cfg = config(attributes={**config()["attributes"], "site": {}}, patient_column=None)
    ref = audit(binned_rows(df, sites), cfg)
    for got, want, key in ((fed.metrics, ref.metrics, KEY),
                           (fed.disparities, ref.disparities, DKEY)):
        assert len(got) == len(want) > 0
        assert got[key].equals(want[key])  # same rows in the same order
        for c in got.columns:
            if pd.api.types.is_float_dtype(want[c]):
                np.testing.assert_allclose(got[c], want[c], rtol=1e-9, atol=1e-12)
            else:
                assert got[c].equals(want[c]), c  # counts, methods, statuses exactly
    # patients are unknown from summaries (never reported as the ECG count)
    assert fed.extras["cohort"] == [dict(r, n_patients=None) for r in ref.extras["cohort"]]
    assert fed.manifest["n_patients_per_group"].startswith("unknown")
    assert "site" in set(fed.metrics.attribute)
    assert {s["site"] for s in fed.manifest["summaries"]} == set(sites)


def test_small_strata_are_left_out_at_the_site() -> None:
    df = cohort(400)
    full = summarize(df, config(), site="A")
    cut = summarize(df, config(), site="A", min_stratum=15)
    strata = full.cells.groupby(["task", "a:sex", "a:race", "a:age"]).n.sum()
    small = strata[strata < 15].xs("t1").index
    assert cut.header["small_cell"] == {"min_stratum": 15, "dropped_strata": len(small)} and len(small)
    kept = cut.cells.groupby(["task", "a:sex", "a:race", "a:age"]).n.sum()
    assert kept.min() >= 15 and cut.header["n_ecgs"] == kept.xs("t1").sum()


def test_poisson_weights_depend_only_on_the_id() -> None:
    ids = np.array([f"patient-{i}" for i in range(20000)])
    w = poisson_weights(ids, 3, seed=5)
    assert w.shape == (20000, 3)
    perm = np.random.default_rng(0).permutation(ids.size)
    assert np.array_equal(poisson_weights(ids[perm], 3, seed=5), w[perm])
    assert not np.array_equal(poisson_weights(ids, 3, seed=6), w)
    assert np.array_equal(poisson_weights(np.repeat(ids[:50], 3), 3, 5), np.repeat(w[:50], 3, 0))
    k = np.arange(6)
    observed = np.bincount(np.minimum(w[:, 0], 5), minlength=6)
    expected = np.append(stats.poisson.pmf(k[:5], 1.0), stats.poisson.sf(4, 1.0)) * ids.size
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_site_replicates_add_up_to_the_pooled_clustered_bootstrap() -> None:
    df = cohort()
    rng = np.random.default_rng(2)
    sites = rng.choice(["A", "B", "C"], len(df))  # patients' ECGs spread over sites
    assert df.groupby("patient_id").apply(lambda g: sites[g.index].tolist()).map(
        lambda s: len(set(s)) > 1).any()
    parts = site_summaries(df, sites, replicates=40)
    pooled = summarize(df, config(), site="all", replicates=40)
    cols = ["task", "a:sex", "a:race", "a:age", "bin", "label"]
    summed = pd.concat([p.cells for p in parts]).groupby(cols).sum(numeric_only=True)
    want = pooled.cells.set_index(cols).sort_index()
    pd.testing.assert_frame_equal(summed.drop(columns="sum_p").astype(want.dtypes.drop("sum_p")),
                                  want.drop(columns="sum_p"))
    # the same weights as hashing the pooled rows' patients directly
    w = poisson_weights(df.patient_id.to_numpy(), 40, seed=11)
    assert np.array_equal(want.xs("t1")[[f"r:{k}" for k in range(40)]].sum().to_numpy(),
                          w.sum(axis=0))


def test_bootstrap_from_site_replicates_equals_the_pooled_one() -> None:
    df = cohort(600)
    sites = np.random.default_rng(4).choice(["A", "B", "C"], len(df), p=[0.6, 0.3, 0.1])
    cfg = {"bootstrap": 60, "intersections": "none"}
    fed = audit_summaries(site_summaries(df, sites, replicates=60, cfg=cfg), config(**cfg))
    one = audit_summaries([summarize(df, config(**cfg), site="all", replicates=60)],
                          config(**cfg))
    a = fed.metrics[fed.metrics.attribute != "site"].reset_index(drop=True)
    b = one.metrics[one.metrics.attribute != "site"].reset_index(drop=True)
    assert (a.ci_method == "bootstrap-percentile").sum() > 10
    assert a[[*KEY, "ci_method", "n"]].equals(b[[*KEY, "ci_method", "n"]])
    np.testing.assert_allclose(a[["estimate", "ci_low", "ci_high"]],
                               b[["estimate", "ci_low", "ci_high"]], rtol=1e-9, atol=1e-12)
    with pytest.raises(ConfigError, match="carry 60"):
        audit_summaries([summarize(df, config(**cfg), site="x", replicates=60)],
                        config(bootstrap=100, intersections="none"))


def test_cli_summarize_then_audit_from_summaries(tmp_path) -> None:
    from typer.testing import CliRunner

    from ecgaudit.cli import app

    df = cohort(400)
    (tmp_path / "cfg.json").write_text(json.dumps(config(intersections="none")))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text((tmp_path / "cfg.json").read_text())  # JSON is YAML
    runner = CliRunner()
    paths = []
    for name, part in (("north", df.iloc[:250]), ("south", df.iloc[250:])):
        part.to_csv(tmp_path / f"{name}.csv", index=False)
        out = tmp_path / f"{name}.summary"
        res = runner.invoke(app, ["summarize", str(tmp_path / f"{name}.csv"), "--config",
                                  str(cfg), "--bins", "256", "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert "No rows, no identifiers" in res.output and f"site '{name}'" in res.output
        paths += ["--from-summaries", str(out)]
    res = runner.invoke(app, ["audit", *paths, "--config", str(cfg), "--no-report",
                              "-q", "--out", str(tmp_path / "res")])
    assert res.exit_code == 0, res.output
    m = pd.read_csv(tmp_path / "res" / "metrics.csv")
    assert set(m[m.attribute == "site"].group) == {"north", "south"}
    assert m[(m.attribute == "overall") & (m.metric == "auroc")].n.iloc[0] == 400
    # the CLI is the library workflow: the same call from Python writes the same bytes
    from ecgaudit.config import load_config
    from ecgaudit.pipeline import RowsElsewhere, run_audit

    outcome = run_audit(load_config(cfg), out=tmp_path / "api", report=False,
                        elsewhere=RowsElsewhere(summaries=tuple(Path(p) for p in paths[1::2])))
    assert outcome.exit_code == 0 and outcome.result.metrics.shape[0] == len(m)
    assert ((tmp_path / "api" / "results.json").read_bytes()
            == (tmp_path / "res" / "results.json").read_bytes())
    res = runner.invoke(app, ["audit", str(tmp_path / "north.csv"), *paths, "--config",
                              str(cfg), "--out", str(tmp_path / "res3")])
    assert res.exit_code == 2 and "give no predictions" in res.output
    bad = pd.read_parquet(tmp_path / "south.summary")
    meta = pq.read_schema(tmp_path / "south.summary").metadata
    bad.loc[0, "sum_p"] += 0.5
    pq.write_table(pa.Table.from_pandas(bad, preserve_index=False).replace_schema_metadata(meta),
                   tmp_path / "south.summary")
    res = runner.invoke(app, ["audit", *paths, "--config", str(cfg), "--no-report", "-q",
                              "--out", str(tmp_path / "res2")])
    assert res.exit_code == 2
    assert "south.summary: content_sha256" in res.output and "Traceback" not in res.output
