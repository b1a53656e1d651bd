"""Paired comparison of two adapt runs' models on the same held-out target patients.

Usage (from the repository root)::

    python examples/adapt/compare_runs.py BASELINE_OUT CANDIDATE_OUT [WAVEFORMS]

e.g. ``results/adapt/source_only results/adapt/dann``: what DANN adds beyond fine-tuning
on the labelled source sites. Both runs must have the same split (same data, seed and
split settings; checked). Scores the exported models on the ``target_test`` records and
prints the paired AUROC change per task and group (paired DeLong) as Markdown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ecgaudit.finetune import parse_finetune_config
from ecgaudit.finetune._data import score_windows
from ecgaudit.io.waveforms import open_ecgs
from ecgaudit.models import Preprocessor, load_model, load_model_config
from ecgaudit.pipeline import compare_predictions
from ecgaudit.pipeline._finetune import _audit_config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
META = ROOT / "examples" / "federated" / "ptbxl_sites_metadata.csv"


def main() -> None:
    base_dir, cand_dir = Path(sys.argv[1]), Path(sys.argv[2])
    waves = Path(sys.argv[3]) if len(sys.argv) > 3 else (
        ROOT.parent / "shared" / "data" / "ptbxl" / "waveforms_100hz_fp16.npy")
    splits = [pd.read_csv(d / "split.csv") for d in (base_dir, cand_dir)]
    if not splits[0].equals(splits[1]):
        sys.exit("error: the two runs have different splits; compare runs of one data set")
    cfg = parse_finetune_config(json.loads((cand_dir / "manifest.json").read_text())["config"])
    test_ids = splits[0].loc[splits[0]["split"] == "target_test", "ecg_id"].astype(str)
    meta = pd.read_csv(META)
    meta = meta[meta["ecg_id"].astype(str).isin(set(test_ids))].reset_index(drop=True)
    spec = json.loads((HERE / "ptbxl_waveforms.json").read_text())
    mcfg = load_model_config(base_dir / "model.json")
    prep = Preprocessor(mcfg)
    wanted = set(meta["ecg_id"].astype(str))
    recs = {str(r.record_id): prep(r) for r in open_ecgs(waves, **spec)
            if str(r.record_id) in wanted}
    x = np.stack([recs[i] for i in meta["ecg_id"].astype(str)])
    frames = []
    for d in (base_dir, cand_dir):
        model = load_model(d / "model.safetensors", load_model_config(d / "model.json"))
        p = score_windows(model, x)
        f = meta.copy()
        for t in cfg.tasks:
            f[f"score:{t}"] = p[:, mcfg.classes.index(t)]
        frames.append(f)
    comp = compare_predictions(frames[0], frames[1], _audit_config(cfg), n_boot=200, seed=0)
    t = comp.table[comp.table["metric"] == "auroc"]
    print(f"### paired AUROC change {cand_dir.name} - {base_dir.name} "
          f"(held-out target patients, n = {len(meta)})\n")
    print("| task | attribute | group | n | change [95% CI] |\n|---|---|---|---|---|")
    for r in t.itertuples(index=False):
        if r.status == "suppressed":
            print(f"| {r.task} | {r.attribute} | {r.group} | <11 | - (suppressed) |")
        elif pd.isna(r.change):
            print(f"| {r.task} | {r.attribute} | {r.group} | {r.n} | - ({r.status}) |")
        else:
            print(f"| {r.task} | {r.attribute} | {r.group} | {r.n} | {r.change:+.3f} "
                  f"[{r.change_ci_low:+.3f}, {r.change_ci_high:+.3f}] |")


if __name__ == "__main__":
    main()
