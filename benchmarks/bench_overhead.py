"""Benchmark (issue 19): the audit without bootstrap against its point estimates, old vs new.

Times, in fresh subprocesses that alternate between two checkouts (``--old`` and ``--new``,
each imported through ``PYTHONPATH``), on the seeded 5-task table of ``bench_audit.py``:

* ``audit``   ``ecgaudit.audit(...)`` without bootstrap (wall and CPU seconds);
* ``points``  ``group_point_estimates`` (14 metrics, DeLong, ranking metrics): the floor;
* ``sha256``  of the audit's ``results.json`` (the two checkouts must agree byte for byte);

and optionally (``--boot B``) the audit with ``bootstrap: B`` on the new checkout only
(``bootstrap_bins: auto``). Medians over ``--repeats`` runs; ratios audit / points and
new / old. Usage::

    python benchmarks/bench_overhead.py --old ../w19speed-old --new . --n 100000 --repeats 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _table(n: int, cache: str | None):
    import pandas as pd
    from bench_audit import make_table

    if cache and Path(cache).exists():
        return pd.read_pickle(cache)
    df = make_table(n)
    if cache:
        df.to_pickle(cache)
    return df


def child(n: int, boot: int, cache: str | None) -> dict[str, Any]:
    """One measurement in this process (the checkout on ``PYTHONPATH``)."""
    from bench_audit import _warm, case_points, make_config

    import ecgaudit

    _warm()
    df = _table(n, cache)
    out: dict[str, Any] = {}
    cfg = make_config(boot, bins="auto" if boot else None) if boot else make_config(0)
    t, c = time.perf_counter(), time.process_time()
    res = ecgaudit.audit(df, cfg)
    out["audit_s"], out["audit_cpu_s"] = time.perf_counter() - t, time.process_time() - c
    out["bootstrap_bins"] = res.manifest.get("bootstrap_bins")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res.save(tmp)
        out["save_s"] = time.perf_counter() - t
        out["sha256"] = hashlib.sha256((Path(tmp) / "results.json").read_bytes()).hexdigest()
    if not boot:
        c = time.process_time()
        out["points_s"] = case_points(df)["seconds"]
        out["points_cpu_s"] = time.process_time() - c
    out["load"] = os.getloadavg()[0]
    return out


def _run(checkout: str, n: int, boot: int, cache: str | None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(checkout).resolve())}
    cmd = [sys.executable, __file__, "--child", "--n", str(n), "--boot", str(boot)]
    if cache:
        cmd += ["--cache", cache]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", help="checkout of the previous commit")
    ap.add_argument("--new", default=".")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--boot", type=int, default=0, help="also time bootstrap: B (new only)")
    ap.add_argument("--cache", help="pickle of the table (generated once)")
    ap.add_argument("--out")
    ap.add_argument("--child", action="store_true")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.n, a.boot, a.cache)))
        return
    versions = {"new": a.new, **({"old": a.old} if a.old else {})}
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in versions}
    for r in range(a.repeats):
        for v, path in (versions.items() if r % 2 == 0 else reversed(versions.items())):
            runs[v].append(_run(path, a.n, 0, a.cache))
            print(v, {k: (round(x, 3) if isinstance(x, float) else x)
                      for k, x in runs[v][-1].items() if k != "bootstrap_bins"}, flush=True)
    summary: dict[str, Any] = {}
    for v, rs in runs.items():
        s = {k: _median(rs, k) for k in ("audit_s", "audit_cpu_s", "points_s", "points_cpu_s",
                                          "save_s")}
        s["audit_over_points"] = s["audit_s"] / s["points_s"]
        s["audit_over_points_runs"] = [x["audit_s"] / x["points_s"] for x in rs]
        s["sha256"] = sorted({x["sha256"] for x in rs})
        summary[v] = s
    if "old" in summary:
        summary["new_over_old"] = {k: summary["new"][k] / summary["old"][k]
                                   for k in ("audit_s", "audit_cpu_s", "points_s")}
        summary["identical_results_json"] = summary["new"]["sha256"] == summary["old"]["sha256"]
    if a.boot:
        boot = [_run(a.new, a.n, a.boot, a.cache) for _ in range(max(1, a.repeats // 3))]
        summary["bootstrap"] = {"B": a.boot, "audit_s": [b["audit_s"] for b in boot],
                                "audit_cpu_s": [b["audit_cpu_s"] for b in boot],
                                "bootstrap_bins": boot[0]["bootstrap_bins"]}
    result = {"n": a.n, "tasks": 5, "repeats": a.repeats, "runs": runs, "summary": summary,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count()}
    print(json.dumps(summary, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
