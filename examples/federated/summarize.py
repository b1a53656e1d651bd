"""Print Markdown tables of a federated or adapt run's audit (used for the example READMEs).

Usage: ``python examples/federated/summarize.py OUT_DIR [METRIC]`` where OUT_DIR is the
``--out`` folder of ``ecgaudit finetune`` (strategy federated or adapt).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def _ci(r: pd.Series, est: str = "estimate") -> str:
    if pd.isna(r.get(est)):
        return f"- ({r.get('status')})"
    lo, hi = r.get("ci_low", r.get("change_ci_low")), r.get("ci_high", r.get("change_ci_high"))
    sign = "+" if est == "change" else ""
    ci = f" [{lo:{sign}.3f}, {hi:{sign}.3f}]" if pd.notna(lo) and pd.notna(hi) else ""
    return f"{r[est]:{sign}.3f}{ci}"


def _changes(table: pd.DataFrame, metric: str, title: str) -> list[str]:
    t = table[(table.metric == metric)]
    lines = [f"### {title}", "", "| task | attribute | group | n | change [95% CI] | |",
             "|---|---|---|---|---|---|"]
    for r in t.itertuples(index=False):
        s = pd.Series(r._asdict())
        flag = ""
        if pd.notna(s.change):
            if pd.notna(s.change_ci_high) and s.change_ci_high < 0:
                flag = "**worse (CI below 0)**"
            elif s.change < 0:
                flag = "lower (CI includes 0)"
        n = s.n if s.status != "suppressed" else "<11"
        lines.append(f"| {s.task} | {s.attribute} | {s.group} | {n} | {_ci(s, 'change')} | "
                     f"{flag} |")
    return [*lines, ""]


def main() -> None:
    out = Path(sys.argv[1])
    metric = sys.argv[2] if len(sys.argv) > 2 else "auroc"
    man = json.loads((out / "manifest.json").read_text())
    lines = [f"## {man['strategy']}: {out.name}", "",
             f"gate: **{man['gate']['status']}**", ""]
    adir = out / "audit"
    if (adir / "approaches_metrics.csv").is_file():
        m = pd.read_csv(adir / "approaches_metrics.csv", dtype={"group": str})
        m = m[(m.metric == metric) & m.attribute.isin(["overall", "site"])]
        approaches = list(dict.fromkeys(m.approach))
        lines += [f"### {metric} by approach (95% CI)", "",
                  "| task | site | " + " | ".join(approaches) + " |",
                  "|---|---|" + "---|" * len(approaches)]
        for (task, group), g in m.groupby(["task", "group"], sort=False):
            cells = [_ci(g[g.approach == a].iloc[0]) for a in approaches]
            lines.append(f"| {task} | {group} | " + " | ".join(cells) + " |")
        lines.append("")
        a = pd.read_csv(adir / "approaches.csv", dtype={"group": str})
        for comp in ("federated - centralised", "federated - local"):
            sel = a[(a.comparison == comp) & a.attribute.isin(["overall", "site"])]
            lines += _changes(sel, metric, f"paired change {comp}")
    comp = pd.read_csv(adir / "comparison.csv", dtype={"group": str})
    lines += _changes(comp, metric, f"paired change adapted - parent ({metric}), every group")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
