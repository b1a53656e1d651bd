"""Patient-clustered replicates from an engine: streamed batches vs the table in memory.

Generates a seeded Parquet dataset (4 parts; race x sex x age, one task, ~3 ECGs per patient
scattered over the parts), then times, each in a fresh subprocess (peak RSS = that
process's maximum):

* ``stream``: ``summarize_where(paths=[glob], replicates=B)``: the embedded DuckDB streams
  the rows in Arrow batches, weights hashed in the client (``ecgaudit/pipeline/_streamsum.py``);
* ``memory``: ``summarize(frame, replicates=B)`` of the same rows read with pandas.

Both print the summary's content digest: they must be equal.

    python benchmarks/bench_streamsum.py --rows 1000000 --replicates 200 \
        --out benchmarks/results/bench_streamsum_1m.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_warehouse import RACE_P, RACES, machine, measure

PARTS = 4

CONFIG = {"tasks": [{"name": "hf", "label": "y", "score": "p"}],
          "attributes": {"race": {"reference": "White"}, "sex": {}, "age": {"kind": "age"}},
          "patient_column": "patient_id", "threshold": {"rule": "fixed", "value": 0.3}}


def generate(out: Path, rows: int, seed: int) -> float:
    """Write ``rows`` rows as PARTS Parquet files; return seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    race = RACES[rng.choice(len(RACES), rows, p=RACE_P)]
    sex = np.where(rng.integers(0, 2, rows) == 1, "male", "female")
    y = (rng.random(rows) < 0.2).astype(np.int8)
    p = 1.0 / (1.0 + np.exp(-(rng.normal(-1.5, 1.0, rows) + 1.6 * y)))
    table = pa.table({"race": race, "sex": sex, "age": rng.integers(18, 96, rows),
                      "y": y, "p": p, "patient_id": rng.integers(0, rows // 3, rows)})
    for i, lo in enumerate(range(0, rows, -(-rows // PARTS))):
        pq.write_table(table.slice(lo, -(-rows // PARTS)), out / f"part-{i}.parquet")
    return time.perf_counter() - t0


CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
config = json.loads(sys.argv[3])
if sys.argv[1] == "stream":
    from ecgaudit.pipeline._warehouse import summarize_where
    s = summarize_where(config, sql=None, connection=None, paths=[sys.argv[2] + "/*.parquet"],
                        site="s", replicates=int(sys.argv[4]))
else:
    import pandas as pd
    from pathlib import Path
    from ecgaudit.pipeline._summaries import summarize
    files = sorted(Path(sys.argv[2]).glob("*.parquet"))
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    s = summarize(frame, config, site="s", replicates=int(sys.argv[4]))
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "cpu_seconds": use.ru_utime + use.ru_stime,
                  "peak_rss_mb": use.ru_maxrss / 1024, "cells": int(len(s.cells)),
                  "content_sha256": s.header["content_sha256"]}), flush=True)
"""


def main() -> None:
    """Generate, measure every case ``--repeat`` times, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ecgaudit-stream-"))
    results: dict = {"rows": a.rows, "replicates": a.replicates, "parts": PARTS,
                     "machine": machine(), "cases": {}}
    try:
        data = work / "data"
        results["generate_seconds"] = generate(data, a.rows, a.seed)
        for case in ("stream", "memory"):
            runs = [measure([case, str(data), json.dumps(CONFIG), str(a.replicates)], CHILD)
                    for _ in range(a.repeat)]
            results["cases"][case] = {"runs": runs, "median_seconds": float(np.median(
                [r.get("seconds", np.nan) for r in runs])), "median_peak_rss_mb": float(
                np.median([r.get("peak_rss_mb", np.nan) for r in runs]))}
        digests = {r.get("content_sha256") for c in results["cases"].values()
                   for r in c["runs"]}
        results["same_summary"] = len(digests) == 1 and None not in digests
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if a.out is not None:
        a.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
