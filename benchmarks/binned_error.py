"""Error of the binned bootstrap mode: metrics of the quantised vs the exact scores.

A binned replicate is exactly the exact replicate of the quantised scores, so the error the
binning adds to every replicate is the difference between the metrics of the quantised and
of the exact scores, measured here over every group and task of the benchmark table.

Usage::

    python benchmarks/binned_error.py 1000000 > benchmarks/results/binned_quantisation_error_1m.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_audit import TASKS, groupings, make_table

from ecgaudit.metrics import group_point_estimates
from ecgaudit.metrics._binned import QuantisedTask
from ecgaudit.metrics._bootstrap import Grouping, TaskArrays

METRICS = ("auroc", "auprc", "brier", "ece", "oe_ratio", "sensitivity")


def main(n: int) -> dict[str, dict[str, dict[str, float]]]:
    df = make_table(n)
    gs = [Grouping(g.attribute, g.codes, g.groups, g.reference) for g in groupings(df)]
    tasks = [TaskArrays(t, df[f"y_{t}"].to_numpy(np.int8), df[f"p_{t}"].to_numpy(float), 0.5)
             for t in TASKS]
    exact = group_point_estimates(tasks, gs)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for bins in (4096, 65536):
        quantised = [TaskArrays(t.name, t.y, QuantisedTask(t.p, t.threshold, bins, 1e-6).scores(),
                                t.threshold) for t in tasks]
        binned = group_point_estimates(quantised, gs)
        res = {}
        for metric in METRICS:
            diffs = [abs(a.values[metric].estimate - b.values[metric].estimate)
                     for t in range(len(tasks)) for k in range(len(gs))
                     for a, b in zip(exact.stats[t][k], binned.stats[t][k])
                     if np.isfinite(a.values[metric].estimate)
                     and np.isfinite(b.values[metric].estimate)]
            res[metric] = {"max": float(np.max(diffs)), "median": float(np.median(diffs)),
                           "groups": len(diffs)}
        out[str(bins)] = res
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1])), indent=1))
