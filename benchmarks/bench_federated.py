"""Benchmark: federated rounds and adaptation epochs vs a plain local training loop.

On the PTB-XL example (the bundled ECGResNet, the 1,819 real waveforms of
../shared/data/ptbxl/, sites 0 / 1 / 2 as federated clients, the split of
``examples/federated/federated_fedavg.yaml``) this times, single-threaded:

* ``plain_epoch``      one epoch of a bare PyTorch loop (AdamW, BCE on the max-over-windows
                       logit, batch 32) over the union of the three sites' training records;
* ``federated_round``  one FedAvg round through :func:`ecgaudit.finetune._federated.run_federated`
                       (each site one local epoch on its own records, aggregation, per-site
                       validation of the global model, checkpoint);
* its parts: local training (sum over sites), aggregation, validation;
* ``fedprox_round``    the same with FedProx (mu = 0.01);
* ``flower_round``     the FedAvg round on Flower (:func:`ecgaudit.finetune._flower.run_flower`:
                       ``run_simulation``, Ray, one worker CPU per site; includes starting and
                       stopping Ray), against ``federated_round`` (the same round in process);
* ``adapt_epoch``      one DANN and one Deep CORAL epoch (source = sites 0 + 1 training
                       records, target = site 2 records, unlabelled) via ``train_adapted``,
                       against ``plain_epoch_source`` (the bare loop over the same source
                       records).

Ratios = framework time / plain-loop time on the same records. Medians of ``--repeats``.

Usage (from the repository root)::

    python benchmarks/bench_federated.py --repeats 3 --out benchmarks/results/bench_federated.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "ptbxl_model" / "ecgresnet_ptbxl.safetensors"
MODEL_CFG = ROOT / "examples" / "ptbxl_model" / "ecgresnet_ptbxl.json"
META = ROOT / "examples" / "federated" / "ptbxl_sites_metadata.csv"
SPEC = ROOT / "examples" / "federated" / "ptbxl_waveforms.json"
CONFIG = ROOT / "examples" / "federated" / "federated_fedavg.yaml"


def _plain_epoch(module: nn.Module, x: np.ndarray, y: np.ndarray, tasks: list[int],
                 batch: int, lr: float) -> float:
    model = copy.deepcopy(module).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(x), generator=gen)
    yt = torch.as_tensor(y)
    t = time.perf_counter()
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]
        if len(idx) < 2:
            continue
        xb = torch.as_tensor(np.asarray(x[idx.numpy()], dtype=np.float32))
        n, w = xb.shape[:2]
        logits = model(xb.reshape(n * w, *xb.shape[2:])).reshape(n, w, -1).amax(dim=1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits[:, tasks], yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--waveforms", default=str(ROOT.parent / "shared" / "data" / "ptbxl"
                                               / "waveforms_100hz_fp16.npy"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--limit", type=int, default=None,
                    help="keep at most this many records per site and split (smoke runs)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from ecgaudit.finetune import load_finetune_config
    from ecgaudit.finetune._adapt import train_adapted
    from ecgaudit.finetune._fedconfig import AdaptConfig
    from ecgaudit.finetune._federated import SiteClient, fedavg, run_federated
    from ecgaudit.finetune._flower import run_flower
    from ecgaudit.pipeline._fedadapt import group_column, prepare
    from ecgaudit.pipeline._federated import _site_split, _with_site_attribute

    cfg = _with_site_attribute(load_finetune_config(CONFIG))
    prep = prepare(MODEL, MODEL_CFG, args.waveforms, META, cfg,
                   json.loads(SPEC.read_text()))
    fed = cfg.federated
    assert fed is not None and prep.base.module is not None
    sites = group_column(prep.site, "site", "site")
    split = _site_split(prep, sites)
    y = prep.site.frame.loc[:, list(cfg.labels.values())].to_numpy(dtype=np.float32)
    w = prep.site.windows
    names = ["0", "1", "2"]
    tr = {s: (sites == s) & (split.split == "train") for s in names}
    va = {s: (sites == s) & (split.split == "val") for s in names}
    if args.limit:
        for m in (*tr.values(), *va.values()):
            m[np.flatnonzero(m)[args.limit:]] = False
    union = tr["0"] | tr["1"] | tr["2"]
    tasks, tc = prep.task_index, cfg.training
    res: dict[str, Any] = {"records": {"train_union": int(union.sum()),
                                       **{f"train_site{s}": int(tr[s].sum()) for s in names}},
                           "windows_per_record": int(w.shape[1]),
                           "batch_size": tc.batch_size, "threads": 1}
    times: dict[str, list[float]] = {k: [] for k in (
        "plain_epoch", "federated_round", "fedprox_round", "flower_round", "local_training",
        "aggregation",
        "validation", "plain_epoch_source", "adapt_epoch_dann", "adapt_epoch_coral")}
    src = tr["0"] | tr["1"]
    for _ in range(args.repeats):
        times["plain_epoch"].append(_plain_epoch(prep.base.module, w[union], y[union], tasks,
                                                 tc.batch_size, tc.lr))
        for alg, key, fn in (("fedavg", "federated_round", run_federated),
                             ("fedprox", "fedprox_round", run_federated),
                             ("fedavg", "flower_round", run_flower)):
            clients = [SiteClient(s, w[tr[s]], y[tr[s]], w[va[s]], y[va[s]], seed=i)
                       for i, s in enumerate(names)]
            module = copy.deepcopy(prep.base.module)
            one = fed.model_copy(update={"rounds": 1, "algorithm": alg})
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                fn(module, clients, federated=one, config=tc, task_index=tasks,
                   checkpoint_dir=tmp)
                times[key].append(time.perf_counter() - t)
        # parts of a round (FedAvg)
        clients = [SiteClient(s, w[tr[s]], y[tr[s]], w[va[s]], y[va[s]], seed=i)
                   for i, s in enumerate(names)]
        module = copy.deepcopy(prep.base.module)
        g = {k: v.clone() for k, v in module.state_dict().items()}
        trainable = [n for n, _ in module.named_parameters()]
        t = time.perf_counter()
        outs = [c.fit(module, g, trainable=trainable, config=tc, local_epochs=1, mu=0.0,
                      tasks=tasks, aggregate="max", round_=1) for c in clients]
        times["local_training"].append(time.perf_counter() - t)
        t = time.perf_counter()
        module.load_state_dict(fedavg([o[0] for o in outs], [o[1] for o in outs]))
        times["aggregation"].append(time.perf_counter() - t)
        t = time.perf_counter()
        for c in clients:
            c.evaluate(module, tasks, "max", tc.batch_size)
        times["validation"].append(time.perf_counter() - t)
        # adaptation: sites 0 + 1 labelled -> site 2 unlabelled
        times["plain_epoch_source"].append(_plain_epoch(prep.base.module, w[src], y[src],
                                                        tasks, tc.batch_size, tc.lr))
        one_epoch = tc.model_copy(update={"epochs": 1})
        target = sites == "2"
        if args.limit:
            target[np.flatnonzero(target)[args.limit:]] = False
        for method in ("dann", "coral"):
            module = copy.deepcopy(prep.base.module)
            t = time.perf_counter()
            train_adapted(module, w[src], y[src], w[va["0"] | va["1"]], y[va["0"] | va["1"]],
                          w[target], adapt=AdaptConfig(target="2", method=method),
                          config=one_epoch, task_index=tasks)
            times[f"adapt_epoch_{method}"].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    res["median_s"] = med
    res["all_s"] = times
    res["ratios"] = {
        "federated_round / plain_epoch": med["federated_round"] / med["plain_epoch"],
        "fedprox_round / plain_epoch": med["fedprox_round"] / med["plain_epoch"],
        "flower_round / federated_round": med["flower_round"] / med["federated_round"],
        "flower_round - federated_round (s)": med["flower_round"] - med["federated_round"],
        "local_training / plain_epoch": med["local_training"] / med["plain_epoch"],
        "adapt_epoch_dann / plain_epoch_source": med["adapt_epoch_dann"]
        / med["plain_epoch_source"],
        "adapt_epoch_coral / plain_epoch_source": med["adapt_epoch_coral"]
        / med["plain_epoch_source"],
    }
    text = json.dumps(res, indent=1, sort_keys=True)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
