"""Audits where the data lives: Parquet through the embedded DuckDB, vs pandas on a sample.

Generates a seeded Parquet dataset in chunks with pyarrow (race x sex x age, ~50 groups, one
task), then times, each in a fresh subprocess (peak RSS = that process's maximum):

* ``summarize``: the engine summary (DuckDB scan + aggregate, memory_limit 1GB);
* ``audit``: ``ecgaudit audit --sql ... --connection duckdb:// --bootstrap B`` (engine
  summary, then the audit of the summary);
* ``pandas_sample``: the row-level ``ecgaudit audit`` of a ``--sample``-row Parquet sample.

    python benchmarks/bench_warehouse.py --rows 10000000 --bootstrap 1000 \
        --out benchmarks/results/bench_warehouse_10m.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RACES = np.array(["White", "Black", "Asian", "Hispanic", "Other", "Native"])
RACE_P = np.array([0.55, 0.18, 0.10, 0.12, 0.04, 0.01])
CHUNK = 5_000_000

CONFIG = """\
tasks:
  - {name: hf, label: y, score: p}
attributes:
  race: {reference: White}
  sex: {}
  age: {kind: age}
threshold: {rule: fixed, value: 0.3}
"""


def generate(out: Path, rows: int, seed: int) -> float:
    """Write ``rows`` rows as Parquet parts of CHUNK rows; return seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    race_dict = pa.array(RACES)
    sex_dict = pa.array(["female", "male"])
    for i, lo in enumerate(range(0, rows, CHUNK)):
        n = min(CHUNK, rows - lo)
        race = rng.choice(len(RACES), n, p=RACE_P).astype(np.int8)
        sex = rng.integers(0, 2, n, dtype=np.int8)
        age = rng.integers(18, 96, n, dtype=np.int16)
        y = (rng.random(n) < 0.2).astype(np.int8)
        shift = 1.6 - 0.4 * (race == 1)
        p = 1.0 / (1.0 + np.exp(-(rng.normal(-1.5, 1.0, n) + shift * y)))
        table = pa.table({
            "race": pa.DictionaryArray.from_arrays(pa.array(race), race_dict),
            "sex": pa.DictionaryArray.from_arrays(pa.array(sex), sex_dict),
            "age": age, "y": y, "p": p})
        pq.write_table(table, out / f"part-{i:04d}.parquet", row_group_size=1_000_000)
    return time.perf_counter() - t0


CHILD = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
if sys.argv[1] == "summarize":
    from ecgaudit.pipeline._warehouse import summarize_where
    from ecgaudit.config import load_config
    s = summarize_where(load_config(sys.argv[2]), sql=sys.argv[3], connection="duckdb://")
    extra = {"cells": int(len(s.cells)), "n_ecgs": int(s.header["n_ecgs"])}
else:
    from ecgaudit.cli import main
    sys.argv = ["ecgaudit", *sys.argv[2:]]
    try:
        main()
    except SystemExit as e:
        if e.code:
            raise
    extra = {}
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "cpu_seconds": use.ru_utime + use.ru_stime,
                  "peak_rss_mb": use.ru_maxrss / 1024, **extra}))
"""


def machine() -> dict:
    """Facts of the machine a benchmark ran on (recorded in every result file)."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
            "note": "shared 2-core machine: timings are upper bounds"}


def measure(args: list[str], child: str = CHILD) -> dict:
    """Run one case (``child``'s code) in a fresh interpreter; its last JSON line or the error."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", child, *args], capture_output=True,
                          text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:] + proc.stdout[-1000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", default="", help="comma-separated: summarize,audit,pandas_sample")
    ap.add_argument("--work", type=Path, default=None, help="where the Parquet goes (deleted)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    work = Path(tempfile.mkdtemp(prefix="ecgaudit-wh-", dir=a.work))
    results: dict = {"rows": a.rows, "bootstrap": a.bootstrap, "sample": a.sample,
                     "machine": machine(), "cases": {}}
    try:
        data = work / "data"
        results["generate_seconds"] = generate(data, a.rows, a.seed)
        results["parquet_bytes"] = sum(f.stat().st_size for f in data.iterdir())
        cfg = work / "audit.yaml"
        cfg.write_text(CONFIG)
        sql = f"SELECT race, sex, age, y, p FROM read_parquet('{data}/*.parquet')"
        if "summarize" not in skip:
            results["cases"]["summarize"] = measure(["summarize", str(cfg), sql])
        if "audit" not in skip:
            results["cases"]["audit"] = measure([
                "audit", "audit", "--config", str(cfg), "--sql", sql, "--connection",
                "duckdb://", "--bootstrap", str(a.bootstrap), "--out", str(work / "out"),
                "--quiet", "--no-report"])
        if "pandas_sample" not in skip:
            import pyarrow.dataset as ds
            import pyarrow.parquet as pq

            n = min(a.sample, a.rows)
            pq.write_table(ds.dataset(data).head(n), work / "sample.parquet")
            results["cases"]["pandas_sample"] = {"rows": n, **measure([
                "audit", "audit", str(work / "sample.parquet"), "--config", str(cfg),
                "--bootstrap", str(a.bootstrap), "--out", str(work / "out_sample"),
                "--quiet", "--no-report"])}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
