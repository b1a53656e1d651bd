"""Adapt the pretrained PTB-XL ECGResNet to PTB-XL recording site 1 with every strategy.

Run from the repository root (about 1-4 minutes on 2 CPU cores)::

    .venv/bin/python examples/site_finetune/run_example.py [OUT_DIR]

Reads the real waveforms in ../shared/data/ptbxl/ (PTB-XL v1.0.1, Wagner et al., Sci Data
2020, CC BY 4.0; already band-passed and z-scored, so they differ from the model's training
data: a real shift) and the model shipped in examples/ptbxl_model/ (iskoo-14/ecgresnet-ptbxl,
Apache-2.0). Writes OUT_DIR/<strategy>/ (adapted model + audit/) and OUT_DIR/SUMMARY.md.
Equivalent CLI call for one strategy::

    ecgaudit finetune --model examples/ptbxl_model/ecgresnet_ptbxl.safetensors \
        --model-config examples/ptbxl_model/ecgresnet_ptbxl.json \
        --ecgs ../shared/data/ptbxl/waveforms_100hz_fp16.npy \
        --ecg-spec examples/site_finetune/ptbxl_waveforms.json \
        --metadata examples/site_finetune/site1_metadata.csv \
        --config examples/site_finetune/finetune_full.yaml --out results/site_finetune/full
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ecgaudit.io import atomic_write_text
from ecgaudit.pipeline._finetune import finetune_and_audit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WAVES = ROOT.parent / "shared" / "data" / "ptbxl" / "waveforms_100hz_fp16.npy"
MODEL = ROOT / "examples" / "ptbxl_model" / "ecgresnet_ptbxl.safetensors"
STRATEGIES = ("recalibrate", "head", "full", "thresholds")


def _ci(d: dict, digits: int = 3) -> str:
    if d.get("estimate") is None:
        return "-"
    return f"{d['estimate']:.{digits}f} [{d['ci_low']:.{digits}f}, {d['ci_high']:.{digits}f}]"


def _change(r: dict) -> str:
    if r.get("change") is None:
        return f"- ({r.get('status')})"
    lo, hi = r.get("change_ci_low"), r.get("change_ci_high")
    ci = f" [{lo:+.3f}, {hi:+.3f}]" if lo is not None and hi is not None else ""
    return f"{r['change']:+.3f}{ci}"


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "results" / "site_finetune"
    if not WAVES.is_file():
        sys.exit(f"error: the PTB-XL waveforms are missing: expected {WAVES.name} in "
                 "../shared/data/ptbxl/ (relative to the repository root); see "
                 "examples/site_finetune/README.md")
    spec = json.loads((HERE / "ptbxl_waveforms.json").read_text())
    lines = ["# Site fine-tuning example: PTB-XL site 1, held-out patients", ""]
    for strategy in STRATEGIES:
        start = time.perf_counter()
        res = finetune_and_audit(MODEL, MODEL.with_suffix(".json"), WAVES,
                                 HERE / "site1_metadata.csv", HERE / f"finetune_{strategy}.yaml",
                                 out / strategy, ecg_options=spec)
        secs = time.perf_counter() - start
        s = res.summary
        lines += [f"## {strategy} ({secs:.0f} s; gate: {res.gate.status})", "",
                  f"{s['metric']} before -> after (95% CI), paired change", "",
                  "| task | before | after | change |", "|---|---|---|---|"]
        lines += [f"| {r['task']} | {_ci(r['before'])} | {_ci(r['after'])} | {_change(r)} |"
                  for r in s["overall"]]
        lines += ["", "Per-group change (paired):", "", "| task | group | n | change |",
                  "|---|---|---|---|"]
        lines += [f"| {g['task']} | {g['attribute']}={g['group']} | {g['n']} | {_change(g)} |"
                  for g in s["groups"]]
        for task, c in s.get("threshold_cost", {}).items():
            lines.append(f"\n{task}: overall sensitivity {c['sensitivity_before']:.3f} -> "
                         f"{c['sensitivity_after']:.3f}, specificity "
                         f"{c['specificity_before']:.3f} -> {c['specificity_after']:.3f}")
        if s.get("warning"):
            lines += ["", f"**Warning:** {s['warning']}"]
        lines.append("")
        print(f"{strategy}: {secs:.0f} s, gate {res.gate.status}", flush=True)
    atomic_write_text(out / "SUMMARY.md", "\n".join(lines) + "\n")
    print(f"wrote {out / 'SUMMARY.md'}")


if __name__ == "__main__":
    main()
