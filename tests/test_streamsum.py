"""Patient-clustered replicates streamed from an engine equal the in-memory summary.

The reference is :func:`ecgaudit.pipeline._summaries.summarize` (weights hashed from the
patient id in memory) on the same rows in the same order: cells, replicate columns, header
and content digest must be identical, while one patient's ECGs sit in different Parquet
files and batches, and in a PostgreSQL table streamed through a server-side cursor.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from ecgaudit.cli import app
from ecgaudit.config import parse_config
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.errors import ConfigError, InputError
from ecgaudit.io._warehouse import open_source
from ecgaudit.pipeline import RowsElsewhere, run_audit
from ecgaudit.pipeline._fromsummaries import audit_summaries
from ecgaudit.pipeline._streamsum import batch_rows, summarize_stream
from ecgaudit.pipeline._summaries import summarize
from ecgaudit.summary import read_summary
from tests._engines import postgres_url, spark  # noqa: F401  (fixtures)

CONFIG = {
    "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"},
              {"name": "af", "label": "y_af", "score": "p_af"}],
    "attributes": {"race": {"reference": "White"}, "sex": {}, "age": {"kind": "age"}},
    "patient_column": "patient_id",
    "threshold": {"rule": "fixed", "value": 0.3},
    "bootstrap": 0,
    "seed": 7,
}
B = 16
#: Rows of the three Parquet parts (uneven) and the rows streamed per batch.
CUTS = (0, 700, 1900, 2400)
BATCH = 300


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    df = make_synthetic_cohort(CUTS[-1], seed=21, tasks=("hf", "af")).frame
    rng = np.random.default_rng(4)
    # ~3 ECGs per patient, scattered over the whole table (so over files and batches).
    df["patient_id"] = rng.integers(0, CUTS[-1] // 3, size=len(df))
    df.loc[df.index[:25], "sex"] = None  # -> Unknown
    df.loc[df.index[30:45], "age"] = np.nan
    return df.reset_index(drop=True)


@pytest.fixture(scope="module")
def dataset(rows: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("stream")
    for i, (a, b) in enumerate(itertools.pairwise(CUTS)):
        rows.iloc[a:b].to_parquet(folder / f"part-{i}.parquet")
    return str(folder / "*.parquet")


def _assert_same(got, ref) -> None:
    assert got.header == ref.header  # content digest included
    pd.testing.assert_frame_equal(got.cells, ref.cells, check_exact=True)


def test_patients_do_span_files_and_batches(rows):
    # The precondition of the tests below: many patients have ECGs in several files and
    # in several streamed batches.
    part = np.searchsorted(CUTS[1:], rows.index, side="right")
    batch = rows.index // BATCH
    spread = rows.assign(part=part, batch=batch).groupby("patient_id")
    assert (spread["part"].min() != spread["part"].max()).sum() > 100
    assert (spread["batch"].min() != spread["batch"].max()).sum() > 300


@pytest.mark.parametrize("min_stratum", [1, 40])
def test_dataset_stream_equals_in_memory_summary(rows, dataset, min_stratum):
    ref = summarize(rows, CONFIG, site="north", bins=256, replicates=B,
                    min_stratum=min_stratum)
    src = open_source(paths=[dataset])
    got = summarize_stream(src, CONFIG, site="north", bins=256, replicates=B,
                           min_stratum=min_stratum, rows_per_batch=BATCH)
    src.close()
    _assert_same(got, ref)
    assert got.header["replicates"] == {"B": B, "seed": 7, "scheme": "poisson-hash-1",
                                        "unit": "patient_id"}
    assert (ref.header["small_cell"]["dropped_strata"] > 0) == (min_stratum > 1)


def test_batch_size_does_not_change_the_summary(rows, dataset):
    ref = summarize(rows, CONFIG, site="s", bins=64, replicates=B)
    for size in (97, 2048):
        src = open_source(paths=[dataset])
        got = summarize_stream(src, CONFIG, site="s", bins=64, replicates=B,
                               rows_per_batch=size)
        src.close()
        _assert_same(got, ref)


def test_replicates_are_patient_clustered(rows, dataset):
    # Independent of the summary code: a patient's ECGs carry one weight, so a replicate's
    # total count is sum over patients of (ECGs of the patient) x (its weight); duplicating
    # every row under a *new* patient id would change it, under the same id doubles it.
    src = open_source(paths=[dataset])
    got = summarize_stream(src, CONFIG, site="s", bins=64, replicates=B, rows_per_batch=BATCH)
    src.close()
    hf = got.cells[got.cells["task"] == "hf"]
    totals = hf[[f"r:{k}" for k in range(B)]].sum().to_numpy()
    sizes = rows["patient_id"].value_counts()
    # Poisson(1): E[total] = n, Var[total] = sum of squared cluster sizes (not n).
    n, var = len(rows), float((sizes.to_numpy() ** 2).sum())
    z = (totals.mean() - n) / np.sqrt(var / B)
    assert abs(z) < 4.5
    assert totals.var(ddof=1) > 1.2 * n  # wider than an ECG-level bootstrap's variance


def test_sql_on_duckdb_and_the_cli_write_the_same_file(rows, dataset, tmp_path):
    ref = summarize(rows, CONFIG, site="warehouse", bins=128, replicates=B)
    cfg = tmp_path / "audit.yaml"
    cfg.write_text(json.dumps(CONFIG))
    out = tmp_path / "wh.summary.parquet"
    res = CliRunner().invoke(app, [
        "summarize", "--config", str(cfg), "--sql", f"SELECT * FROM read_parquet('{dataset}')",
        "--connection", "duckdb://", "--bins", "128", "--replicates", str(B), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert f"{B} bootstrap replicates" in res.output
    _assert_same(read_summary(out), ref)


def test_postgres_stream_equals_in_memory_summary(rows, postgres_url):  # noqa: F811
    import ibis

    con = ibis.connect("postgres://" + postgres_url.split("://", 1)[1])
    table = pa.Table.from_pandas(rows.assign(rid=np.arange(len(rows))), preserve_index=False)
    con.create_table("stream_ecgs", table, overwrite=True)
    con.disconnect()
    ref = summarize(rows, CONFIG, site="pg", bins=256, replicates=B)
    src = open_source(sql="SELECT * FROM stream_ecgs ORDER BY rid", connection=postgres_url)
    got = summarize_stream(src, CONFIG, site="pg", bins=256, replicates=B,
                           rows_per_batch=BATCH)
    src.close()
    _assert_same(got, ref)


@pytest.mark.slow
# pyspark's Arrow collection leaves its local socket to the garbage collector.
@pytest.mark.filterwarnings("ignore::ResourceWarning",
                            "ignore::pytest.PytestUnraisableExceptionWarning")
def test_spark_local_stream_equals_in_memory_summary(rows, tmp_path, spark):  # noqa: F811
    # Spark local mode costs a JVM job or two (~10 s here): one task, one attribute.
    one = {**CONFIG, "tasks": CONFIG["tasks"][:1], "attributes": {"sex": {}}}
    path = tmp_path / "rows.parquet"
    rows.assign(rid=np.arange(len(rows))).to_parquet(path)
    ref = summarize(rows, one, site="sp", bins=64, replicates=B)
    src = open_source(sql=f"SELECT * FROM parquet.`{path}` ORDER BY rid",
                      connection="spark:local[2]")
    got = summarize_stream(src, one, site="sp", bins=64, replicates=B, rows_per_batch=BATCH)
    _assert_same(got, ref)


def test_missing_patient_id_in_a_batch_names_the_column(rows, tmp_path):
    bad = rows.astype({"patient_id": "float64"})
    bad.loc[1500:1502, "patient_id"] = np.nan  # in the third batch of 700 rows
    bad.to_parquet(tmp_path / "bad.parquet")
    src = open_source(paths=[str(tmp_path / "bad.parquet")])
    with pytest.raises(InputError) as err:
        summarize_stream(src, CONFIG, site="s", replicates=B, rows_per_batch=700)
    src.close()
    msg = str(err.value)
    assert "'patient_id'" in msg and "3 row(s)" in msg and "rows 1401..2100" in msg
    assert "IS NOT NULL" in msg
    cfg = tmp_path / "audit.yaml"
    cfg.write_text(json.dumps(CONFIG))
    res = CliRunner().invoke(app, [
        "summarize", str(tmp_path / "bad.parquet"), str(tmp_path / "bad.parquet"),
        "--config", str(cfg), "--replicates", "4", "-o", str(tmp_path / "x.parquet")])
    assert res.exit_code == 2, res.output
    assert "'patient_id'" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.parquet").exists()


def test_id_column_is_the_unit_without_a_patient_column(rows, dataset):
    cfg = {**CONFIG, "patient_column": None, "id_column": "ecg_id"}
    ref = summarize(rows, cfg, site="s", bins=64, replicates=B)
    src = open_source(paths=[dataset])
    got = summarize_stream(src, cfg, site="s", bins=64, replicates=B, rows_per_batch=BATCH)
    src.close()
    _assert_same(got, ref)
    assert got.header["replicates"]["unit"] == "ecg_id"


def test_bca_is_refused_before_streaming(tmp_path):
    cfg = parse_config({**CONFIG, "bootstrap": 8, "bootstrap_method": "bca"})
    with pytest.raises(ConfigError, match="percentile"):
        run_audit(cfg, out=tmp_path / "o", report=False, elsewhere=RowsElsewhere(
            sql="SELECT * FROM read_parquet('no/such/*.parquet')", connection="duckdb://"))


def test_replicates_without_any_unit_are_refused(dataset):
    cfg = {**CONFIG, "patient_column": None}
    src = open_source(paths=[dataset])
    with pytest.raises(ConfigError, match="patient_column"):
        summarize_stream(src, cfg, replicates=4)
    src.close()


def test_batch_rows_bound_the_weights():
    assert batch_rows(200) * 200 <= 2**23 and batch_rows(200) >= 1024
    assert batch_rows(0) == 2**20 and batch_rows(10**6) == 1024


def _audit_cli(tmp_path, config, dataset):
    cfg = tmp_path / "plain.yaml"
    cfg.write_text(json.dumps(config))
    out = tmp_path / "plain"
    res = CliRunner().invoke(app, [
        "audit", "--config", str(cfg), "--sql", f"SELECT * FROM read_parquet('{dataset}')",
        "--connection", "duckdb://", "--bootstrap", str(B), "--out", str(out), "--quiet",
        "--no-report"])
    assert res.exit_code == 0, res.output
    return json.loads((out / "results.json").read_text())


def test_audit_sql_with_a_patient_column_is_patient_clustered(rows, dataset, tmp_path):
    one = {**CONFIG, "tasks": CONFIG["tasks"][:1],
           "attributes": {"race": CONFIG["attributes"]["race"], "sex": {}}}
    seen: list[str] = []
    outcome = run_audit(parse_config({**one, "bootstrap": B}), out=tmp_path / "clustered",
                        report=False, elsewhere=RowsElsewhere(
                            sql=f"SELECT * FROM read_parquet('{dataset}')",
                            connection="duckdb://"),
                        steps=lambda step, i, n: seen.append(step))
    got = json.loads((tmp_path / "clustered" / "results.json").read_text())
    reason = got["manifest"]["bootstrap_bins"]["reason"]
    assert "patient-clustered" in reason and "'patient_id'" in reason
    assert outcome.result.manifest["bootstrap_bins"]["reason"] == reason
    boot = [s for s in seen if s.startswith("bootstrap:")]
    assert boot and f"patient-clustered: {B} Poisson replicates" in boot[0]
    ref_summary = summarize(rows, one, site="warehouse", replicates=B)
    ref = json.loads(audit_summaries([ref_summary], {**one, "bootstrap": B}
                                     ).output_files()["results.json"])
    key = ("task", "attribute", "group", "metric")
    have = {tuple(m.get(k) for k in key): m for m in got["metrics"]}
    want = {tuple(m.get(k) for k in key): m for m in ref["metrics"]}
    assert have.keys() == want.keys() and len(have) > 20
    n_boot = 0
    for k, m in want.items():
        assert have[k]["ci_method"] == m["ci_method"], k
        n_boot += "bootstrap" in str(m["ci_method"])
        for field in ("estimate", "ci_low", "ci_high"):
            if isinstance(m.get(field), float):
                assert have[k][field] == pytest.approx(m[field], rel=1e-12), (k, field)
    assert n_boot > 0
    # Without a patient column: per-cell ECG draws, as before (nothing streamed).
    plain = _audit_cli(tmp_path, {**one, "patient_column": None}, dataset)
    assert "patient-clustered" not in plain["manifest"]["bootstrap_bins"]["reason"]
