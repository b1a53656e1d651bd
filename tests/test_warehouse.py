"""Summaries computed in real engines (DuckDB, PostgreSQL, Spark local) equal the pandas ones.

The reference is :func:`ecgaudit.pipeline._summaries.summarize` on the same rows in memory:
every count must be identical, score sums equal to rounding, and the audit of the engine's
summary equal to the audit of the pandas summary.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from ecgaudit.cli import app
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.errors import InputError
from ecgaudit.io._warehouse import Grid, cell_counts, open_source, redact
from ecgaudit.pipeline._fromsummaries import audit_summaries
from ecgaudit.pipeline._summaries import summarize
from ecgaudit.pipeline._warehouse import summarize_source
from ecgaudit.summary import grid_edges, read_summary, write_summary
from tests._engines import postgres_url, spark  # noqa: F401  (fixtures)

CONFIG = {
    "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"},
              {"name": "af", "label": "y_af", "score": "p_af"}],
    "attributes": {"race": {"reference": "White", "recode": {"Other": "Other/unknown"}},
                   "sex": {}, "age": {"kind": "age"}},
    "patient_column": "patient_id",
    "threshold": {"rule": "fixed", "value": 0.3},
    "bootstrap": 0,
}


#: A smaller audit for the end-to-end checks (one task, two attributes).
AUDIT = {**CONFIG, "tasks": CONFIG["tasks"][:1],
         "attributes": {"race": CONFIG["attributes"]["race"], "sex": {}}}


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    df = make_synthetic_cohort(2500, seed=11, tasks=("hf", "af")).frame
    df.loc[df.index[:40], "sex"] = None  # missing -> Unknown
    df.loc[df.index[40:60], "age"] = np.nan
    return df


@pytest.fixture(scope="module")
def parquet(rows: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("wh") / "rows.parquet"
    rows.to_parquet(path)
    return str(path)


def _same(engine, ref) -> None:
    a, b = ref.cells, engine.cells
    assert list(a.columns) == list(b.columns)
    assert a.dtypes.equals(b.dtypes)
    exact = [c for c in a.columns if c != "sum_p"]
    pd.testing.assert_frame_equal(a[exact], b[exact])
    np.testing.assert_allclose(b["sum_p"], a["sum_p"], rtol=1e-12, atol=1e-9)
    for key in ("tasks", "attributes", "grid", "n_ecgs", "small_cell", "replicates"):
        assert engine.header[key] == ref.header[key], key


@pytest.mark.parametrize("min_stratum", [1, 25])
def test_duckdb_parquet_summary_equals_pandas(rows, parquet, min_stratum):
    ref = summarize(rows, CONFIG, site="a", bins=256, min_stratum=min_stratum)
    src = open_source(paths=[parquet])
    got = summarize_source(src, CONFIG, site="a", bins=256, min_stratum=min_stratum)
    src.close()
    _same(got, ref)
    if min_stratum > 1:
        assert got.header["small_cell"]["dropped_strata"] > 0


def test_duckdb_csv_glob_and_sql(rows, tmp_path):
    half = len(rows) // 2
    rows.iloc[:half].to_csv(tmp_path / "part-1.csv", index=False)
    rows.iloc[half:].to_csv(tmp_path / "part-2.csv", index=False)
    ref = summarize(rows, CONFIG, site="a", bins=64)
    src = open_source(paths=[str(tmp_path / "part-*.csv")])
    _same(summarize_source(src, CONFIG, site="a", bins=64), ref)
    src.close()
    rows.to_parquet(tmp_path / "all.parquet")
    sql = f"SELECT * FROM read_parquet('{tmp_path / 'all.parquet'}')"
    src = open_source(sql=sql, connection="duckdb://")
    _same(summarize_source(src, CONFIG, site="a", bins=64), ref)
    src.close()


def test_engine_bins_scores_on_and_next_to_every_edge(tmp_path):
    """Scores exactly on an edge, one ulp below and above: the NumPy bin every time."""
    threshold = 0.3
    edges = grid_edges(64, threshold)
    p = np.concatenate([edges, np.nextafter(edges, 0.0), np.nextafter(edges, 1.0)])
    p = np.clip(p, 0.0, 1.0)
    pa_path = tmp_path / "edges.parquet"
    pd.DataFrame({"g": "x", "y": np.arange(p.size) % 2, "p": p}).to_parquet(pa_path)
    plain = grid_edges(64, 0.0)
    src = open_source(paths=[str(pa_path)])
    got = cell_counts(src, ["g"], "y", "p", Grid(plain, 12.0, threshold))
    src.close()
    want = np.searchsorted(edges[1:-1], p, side="right")
    ref = pd.Series(1, index=pd.MultiIndex.from_arrays([np.arange(p.size) % 2, want])
                    ).groupby(level=[0, 1]).sum()
    back = got.set_index(["y", "__bin"])["__n"].sort_index()
    assert back.to_dict() == ref.to_dict()


def test_logit_scores_are_converted_in_the_engine(rows, tmp_path):
    logits = rows.assign(p_hf=np.log(rows.p_hf / (1 - rows.p_hf)))
    cfg = {**CONFIG, "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf",
                                "score_type": "logit"}]}
    logits.to_parquet(tmp_path / "l.parquet")
    src = open_source(paths=[str(tmp_path / "l.parquet")])
    got = summarize_source(src, cfg, site="a", bins=128)
    src.close()
    ref = summarize(logits, cfg, site="a", bins=128)
    assert got.cells["n"].sum() == ref.cells["n"].sum() == len(rows)
    # expit in SQL vs scipy may differ by an ulp: the bins agree except, at most, on a score
    # sitting on an edge (none here), so the cell tables are identical.
    _same(got, ref)


def test_engine_summary_audits_like_the_pandas_summary(rows, parquet):
    ref = summarize(rows, AUDIT, site="a", bins=256)
    src = open_source(paths=[parquet])
    got = summarize_source(src, AUDIT, site="a", bins=256)
    src.close()
    m_ref = audit_summaries([ref], AUDIT).metrics
    m_got = audit_summaries([got], AUDIT).metrics
    num = m_ref.select_dtypes("number").columns
    pd.testing.assert_frame_equal(m_got.drop(columns=num), m_ref.drop(columns=num))
    np.testing.assert_allclose(m_got[num].to_numpy(float), m_ref[num].to_numpy(float),
                               rtol=1e-9, atol=1e-12, equal_nan=True)


def _load_pg(url: str, rows: pd.DataFrame, name: str) -> None:
    import ibis

    con = ibis.connect("postgres://" + url.split("://", 1)[1])
    con.create_table(name, pa.Table.from_pandas(rows, preserve_index=False), overwrite=True)
    con.disconnect()


def test_postgres_summary_equals_pandas(rows, postgres_url):  # noqa: F811
    _load_pg(postgres_url, rows, "ecgs")
    ref = summarize(rows, CONFIG, site="a", bins=256)
    src = open_source(sql="SELECT * FROM ecgs WHERE p_hf >= 0", connection=postgres_url)
    assert src.backend == "postgres"
    got = summarize_source(src, CONFIG, site="a", bins=256)
    src.close()
    _same(got, ref)


def test_postgres_errors_name_the_connection_never_the_password(rows, postgres_url):  # noqa: F811
    _load_pg(postgres_url, rows, "ecgs_err")
    password = postgres_url.split(":")[2].split("@")[0]
    with pytest.raises(InputError) as bad_sql:
        open_source(sql="SELECT * FROM no_such_table", connection=postgres_url)
    wrong = postgres_url.replace(password, "wrong-" + password)
    with pytest.raises(InputError) as bad_pw:
        open_source(sql="SELECT 1", connection=wrong)
    src = open_source(sql="SELECT p_hf, y_hf, sex FROM ecgs_err", connection=postgres_url)
    with pytest.raises(InputError) as missing:
        summarize_source(src, CONFIG, site="a")
    src.close()
    for exc in (bad_sql, bad_pw, missing):
        assert password not in str(exc.value)
        assert "127.0.0.1" in str(exc.value)
    assert "no_such_table" in str(bad_sql.value)
    assert "'race'" in str(missing.value) and "'y_af'" in str(missing.value)
    assert redact("postgresql://u:pw@h:1/d") == "postgresql://u:***@h:1/d"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_spark_local_summary_equals_pandas(rows, parquet, spark):  # noqa: F811
    # One task (each task is a Spark job or two): Spark local mode costs ~10 s a job here.
    ref = summarize(rows, AUDIT, site="a", bins=256)
    src = open_source(sql=f"SELECT * FROM parquet.`{parquet}`", connection="spark:local[2]")
    assert src.backend == "pyspark"
    got = summarize_source(src, AUDIT, site="a", bins=256)
    _same(got, ref)


def _cfg_file(tmp_path, config=CONFIG) -> str:
    import yaml

    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_cli_audit_sql_equals_audit_of_pandas_summary(rows, parquet, tmp_path):
    cfg = _cfg_file(tmp_path, AUDIT)
    res = CliRunner().invoke(app, [
        "audit", "--config", cfg, "--sql", f"SELECT * FROM read_parquet('{parquet}')",
        "--connection", "duckdb://", "--out", str(tmp_path / "out"), "--quiet", "--no-report"])
    assert res.exit_code == 0, res.output
    got = json.loads((tmp_path / "out" / "results.json").read_text())
    ref_summary = summarize(rows, AUDIT, site="warehouse", bins=1024)
    ref = json.loads(audit_summaries([ref_summary], AUDIT).output_files()["results.json"])
    key = ("task", "attribute", "group", "metric")

    def index(doc):
        return {tuple(m.get(k) for k in key): m for m in doc["metrics"]}

    have, want = index(got), index(ref)
    assert have.keys() == want.keys() and len(have) > 20
    for k, m in want.items():
        assert have[k]["n"] == m["n"], k
        for field, value in m.items():
            if isinstance(value, float):
                assert have[k][field] == pytest.approx(value, rel=1e-9, abs=1e-12), (k, field)


def test_cli_engine_errors_exit_2_without_traceback(parquet, tmp_path):
    cfg = _cfg_file(tmp_path)
    runner = CliRunner()
    cases = {
        "unknown engine 'mysql'": ["--sql", "SELECT 1", "--connection", "mysql://u:pw@h/d"],
        "columns 'race', 'sex'": ["--sql", f"SELECT p_hf, y_hf, p_af, y_af, age, patient_id "
                                  f"FROM read_parquet('{parquet}')", "--connection", "duckdb://"],
        "query failed on duckdb://": ["--sql", "SELEC nonsense", "--connection", "duckdb://"],
        "--sql and --connection go together": ["--sql", "SELECT 1"],
    }
    for needle, args in cases.items():
        res = runner.invoke(app, ["audit", "--config", cfg, *args, "--out",
                                  str(tmp_path / "o"), "--quiet"])
        assert res.exit_code == 2, (needle, res.output)
        assert needle in res.output, res.output
        assert "Traceback" not in res.output and "pw" not in res.output.replace("password", "")


def test_score_problems_are_refused_in_the_engine(rows, tmp_path):
    bad = rows.copy()
    bad.loc[bad.index[:3], "p_hf"] = 1.7
    bad.loc[bad.index[3:5], "p_af"] = np.nan
    bad.to_parquet(tmp_path / "bad.parquet")
    src = open_source(paths=[str(tmp_path / "bad.parquet")])
    with pytest.raises(InputError) as err:
        summarize_source(src, CONFIG, site="a")
    src.close()
    msg = str(err.value)
    assert "'p_hf'" in msg and "1.7" in msg and "'p_af'" in msg and "2 rows" in msg


def test_labels_validated_like_row_level(rows, tmp_path):
    bad = rows.assign(y_hf=rows.y_hf.astype(int) * 2)  # 0/2
    bad.to_parquet(tmp_path / "lab.parquet")
    src = open_source(paths=[str(tmp_path / "lab.parquet")])
    with pytest.raises(InputError, match="y_hf"):
        summarize_source(src, CONFIG, site="a")
    src.close()


def test_written_engine_summary_reads_back(rows, parquet, tmp_path):
    src = open_source(paths=[parquet])
    got = summarize_source(src, CONFIG, site="north", bins=64)
    src.close()
    back = read_summary(write_summary(got, tmp_path / "north.parquet"))
    assert back.header["site"] == "north"
    assert int(back.cells["n"].sum()) == 2 * len(rows)
