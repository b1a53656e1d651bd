"""Two source trees side by side on ``bench_audit.py`` cases, runs alternated.

Each run is a fresh subprocess of ``TREE/benchmarks/bench_audit.py --case ...`` with
``PYTHONPATH=TREE``; the trees alternate within every repeat (old-new, then new-old, ...),
so that a shared machine's load falls on both alike. Wall seconds are the timed region of
``bench_audit.py``; ``process_cpu_s`` is the subprocess's whole CPU time (all threads,
warm-up and table building included), which a loaded machine distorts much less.

Usage::

    python benchmarks/bench_side_by_side.py --old /path/to/old/tree --new . \
        --n 1000000 --boot 1000 --repeats 2 --cases audit_binned,audit_point --out OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

#: case name -> (bench_audit case, replicates from --boot?, bins)
CASES = {"audit_point": ("audit", False, None), "audit_binned": ("audit", True, 4096),
         "engine_binned": ("engine", True, 4096), "points": ("points", False, None)}


def run_once(tree: Path, case: str, n: int, boot: int, bins: int | None) -> dict[str, Any]:
    """Run one case in ``tree``; its JSON line plus CPU time and load average."""
    cmd = [sys.executable, str(tree / "benchmarks" / "bench_audit.py"), "--case", case,
           "--n", str(n), "--boot", str(boot)]
    if bins:
        cmd += ["--bins", str(bins)]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)),
                          capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["load1"] = load
    out["process_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, type=Path)
    ap.add_argument("--new", required=True, type=Path)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cases", default="audit_binned,audit_point")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    res: dict[str, Any] = {"n": args.n, "boot": args.boot, "repeats": args.repeats, "cases": {}}
    for key in args.cases.split(","):
        case, boots, bins = CASES[key]
        runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
        for r in range(args.repeats):
            for v in ("old", "new") if r % 2 == 0 else ("new", "old"):
                out = run_once(trees[v], case, args.n, args.boot if boots else 0, bins)
                runs[v].append(out)
                print(key, v, round(out["seconds"], 2), file=sys.stderr, flush=True)
        entry: dict[str, Any] = {
            v: {"median_s": statistics.median(x["seconds"] for x in rs),
                "runs": [round(x["seconds"], 3) for x in rs],
                "process_cpu_s": [round(x["process_cpu_s"], 1) for x in rs],
                "peak_rss_mb": max(x["peak_rss_mb"] for x in rs),
                "load1": [round(x["load1"], 1) for x in rs]} for v, rs in runs.items()}
        entry["ratio_new_over_old"] = entry["new"]["median_s"] / entry["old"]["median_s"]
        entry["cpu_ratio_new_over_old"] = (statistics.median(entry["new"]["process_cpu_s"])
                                           / statistics.median(entry["old"]["process_cpu_s"]))
        res["cases"][key] = entry
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
