"""Time the audit with the library defaults (issue 12): ``bootstrap: 1000``, ``bootstrap_bins:
auto``, ``calibration.clip: 0``, closed-form score intervals with patient design effects.

Run from the repository root::

    .venv/bin/python benchmarks/bench_defaults.py --n 1000000 \
        --out benchmarks/results/bench_defaults_1m.json

The table is ``bench_audit.make_table`` (5 tasks, race/sex/age and their pairwise
intersections, 57 groups) with a patient column (every patient has 1-3 ECGs), audited once
with a config that sets no bootstrap key at all.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_audit import TASKS, make_table


def main() -> None:
    """Run the timing and write the JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import ecgaudit
    from ecgaudit.config import AttributeConfig, AuditConfig, TaskConfig

    df = make_table(args.n)
    rng = np.random.default_rng(0)
    df["patient_id"] = np.cumsum(rng.random(args.n) < 0.5)  # 1-3 ECGs per patient on average
    cfg = AuditConfig(
        tasks=[TaskConfig(name=t, label=f"y_{t}", score=f"p_{t}") for t in TASKS],
        attributes={"race": AttributeConfig(), "sex": AttributeConfig(),
                    "age": AttributeConfig(kind="age")},
        patient_column="patient_id",
    )
    ecgaudit.audit(df.head(3000), cfg)  # compile / load the kernels outside the timing
    t = time.perf_counter()
    res = ecgaudit.audit(df, cfg)
    seconds = time.perf_counter() - t
    m = res.metrics
    out = {
        "n": args.n, "tasks": len(TASKS), "seconds": seconds,
        "bootstrap": res.manifest["config"]["bootstrap"],
        "bootstrap_bins": res.manifest["bootstrap_bins"],
        "zero_width_metric_cis": int(((m.ci_low == m.ci_high) & m.ci_low.notna()).sum()),
        "ci_methods": m.ci_method.value_counts().to_dict(),
        "machine": platform.platform(), "note": "shared 2-core machine: an upper bound",
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
