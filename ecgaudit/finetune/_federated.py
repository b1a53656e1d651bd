"""Federated fine-tuning across sites: FedAvg and FedProx, simulated in one process.

The protocol is the one Flower's ``FedAvg`` / ``FedProx`` strategies implement: in each
round every client (site) receives the global weights as a list of NumPy arrays, trains
locally on its own records (FedProx adds ``mu/2 * ||w - w_global||^2`` to the local loss)
and returns its weights and its number of training records; the server replaces the global
weights by the record-weighted average of the clients' weights. Only weights and counts
cross the site boundary; records, labels and patient ids never do.

``strategy: federated`` runs these rounds on Flower (:mod:`ecgaudit.finetune._flower`: a
``ClientApp`` around :class:`SiteClient`, Flower's ``FedAvg`` / ``FedProx`` strategies, the
simulation engine); :func:`run_federated` is the same protocol as a plain loop in one
process, kept as the reference the Flower run is tested against.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.torch import load as st_load
from torch import nn

from ecgaudit.errors import InputError
from ecgaudit.finetune._checkpoint import state_bytes
from ecgaudit.finetune._config import TrainingConfig
from ecgaudit.finetune._fedconfig import FederatedConfig
from ecgaudit.finetune._train import (
    Aggregate,
    _diverged,
    _evaluate,
    _record_logits,
    _set_modes,
    _trainable_names,
    deterministic,
    epoch_order,
    find_head,
)
from ecgaudit.io import atomic_write_bytes, atomic_write_text

__all__ = ["FederatedResult", "SiteClient", "fedavg", "round_seed", "run_federated"]

ProgressFn = Callable[[dict[str, Any]], None]
FED_CHECKPOINT = {"weights": "federated_last.safetensors", "state": "federated_last.json"}


def fedavg(states: Sequence[dict[str, torch.Tensor]], weights: Sequence[int]) -> dict[
        str, torch.Tensor]:
    """Return the record-weighted average of client state dicts (FedAvg aggregation).

    Floating tensors (weights and BatchNorm running statistics) are averaged with weights
    ``n_k / sum(n)``, in float64, in the order the clients are given; integer tensors
    (BatchNorm's ``num_batches_tracked``) take the maximum.

    Parameters
    ----------
    states : sequence of dict
        One state dict per client, same keys and shapes.
    weights : sequence of int
        Training records per client.

    Returns
    -------
    dict of str to Tensor
    """
    total = float(sum(weights))
    if total <= 0:
        raise InputError("FedAvg needs at least one client with training records")
    out: dict[str, torch.Tensor] = {}
    for key, ref in states[0].items():
        if ref.is_floating_point():
            acc = torch.zeros(ref.shape, dtype=torch.float64)
            for st, w in zip(states, weights, strict=True):
                acc += st[key].detach().cpu().double() * (w / total)
            out[key] = acc.to(ref.dtype)
        else:
            out[key] = torch.stack([st[key].detach().cpu() for st in states]).amax(dim=0)
    return out


def round_seed(seed: int, round_: int) -> int:
    """Return the seed of a client's local training in one round."""
    return seed * 10_007 + round_


@dataclass
class SiteClient:
    """One site's local data and training routine (Flower ``NumPyClient`` shape).

    Attributes
    ----------
    name : str
        Site label (the value of the site column).
    x_train, y_train, x_val, y_val : numpy.ndarray
        The site's windows ``(records, windows, leads, samples)`` and 0/1 labels.
    seed : int
        Seed of this site's batch order generator.
    """

    name: str
    x_train: NDArray[Any]
    y_train: NDArray[Any]
    x_val: NDArray[Any]
    y_val: NDArray[Any]
    seed: int
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def fit(
        self,
        model: nn.Module,
        global_state: dict[str, torch.Tensor],
        *,
        trainable: list[str],
        config: TrainingConfig,
        local_epochs: int,
        mu: float,
        tasks: list[int],
        aggregate: Aggregate,
        round_: int,
    ) -> tuple[dict[str, torch.Tensor], int, float]:
        """Train from the global weights; return (local weights, n records, mean loss).

        The batch order and torch's RNG are seeded from ``(seed, round_)`` alone, so the
        result does not depend on which process runs the client or on earlier rounds (a
        Flower simulation runs each round's client in a fresh worker call).
        """
        seed = round_seed(self.seed, round_)
        self.generator.manual_seed(seed)
        with deterministic(seed, config.num_threads):
            return self._fit(model, global_state, trainable=trainable, config=config,
                             local_epochs=local_epochs, mu=mu, tasks=tasks,
                             aggregate=aggregate, round_=round_)

    def _fit(self, model: nn.Module, global_state: dict[str, torch.Tensor], *,
             trainable: list[str], config: TrainingConfig, local_epochs: int, mu: float,
             tasks: list[int], aggregate: Aggregate, round_: int) -> tuple[
            dict[str, torch.Tensor], int, float]:
        model.load_state_dict(global_state)
        params = dict(model.named_parameters())
        tset = set(trainable)
        for n, p in params.items():
            p.requires_grad_(n in tset)
        anchor = {n: global_state[n].detach().clone() for n in trainable}
        optimizer = torch.optim.AdamW([params[n] for n in trainable], lr=config.lr,
                                      weight_decay=config.weight_decay)
        yt = torch.as_tensor(np.asarray(self.y_train, dtype=np.float32))
        losses: list[float] = []
        n = len(self.x_train)
        for _ in range(local_epochs):
            order = epoch_order(n, None, self.generator)
            batches = [b for b in (order[i:i + config.batch_size]
                                   for i in range(0, n, config.batch_size)) if len(b) > 1]
            if config.max_batches_per_epoch:
                batches = batches[: config.max_batches_per_epoch]
            _set_modes(model, tset)
            for bi, idx in enumerate(batches, start=1):
                xb = torch.as_tensor(np.asarray(self.x_train[idx.numpy()], dtype=np.float32))
                logits = _record_logits(model, xb, aggregate)[:, tasks]
                loss = nn.functional.binary_cross_entropy_with_logits(logits, yt[idx])
                if mu > 0:
                    prox = sum(((params[k] - anchor[k]) ** 2).sum() for k in trainable)
                    loss = loss + 0.5 * mu * prox
                value = float(loss.detach())
                if not math.isfinite(value):
                    _diverged(value, round_, bi, 0, [], None, config.lr)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(value)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return state, n, float(np.mean(losses)) if losses else math.nan

    def evaluate(self, model: nn.Module, tasks: list[int], aggregate: Aggregate,
                 batch_size: int) -> tuple[float, float, int]:
        """Return validation loss, macro AUROC and record count of the given model."""
        loss, auc = _evaluate(model, self.x_val, self.y_val, tasks, aggregate, "cpu",
                              batch_size)
        return loss, auc, len(self.x_val)


@dataclass
class FederatedResult:
    """Outcome of :func:`run_federated`: the kept global weights and the round history."""

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, Any]]
    best_round: int
    stopped_early: bool
    trainable: list[str]
    initial_val: dict[str, float]


def _weighted_val(clients: list[SiteClient], model: nn.Module, tasks: list[int],
                  aggregate: Aggregate, batch_size: int) -> dict[str, Any]:
    per = {c.name: c.evaluate(model, tasks, aggregate, batch_size) for c in clients}
    total = sum(n for _, _, n in per.values())
    loss = sum(v * n for v, _, n in per.values()) / total
    return {"val_loss": float(loss),
            "sites": {s: {"val_loss": v, "val_auroc": a, "n": n} for s, (v, a, n) in
                      per.items()}}


def _fingerprint(fed: FederatedConfig, training: TrainingConfig, clients: list[SiteClient],
                 tasks: list[int]) -> str:
    data = {"federated": fed.model_dump(mode="json", exclude={"rounds"}),
            "training": training.model_dump(mode="json", exclude={"epochs"}), "tasks": tasks,
            "sites": [(c.name, len(c.x_train), len(c.x_val)) for c in clients]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _save(folder: Path, gstate: dict[str, torch.Tensor], best: dict[str, torch.Tensor],
          clients: list[SiteClient], meta: dict[str, Any]) -> None:
    tensors = {f"global.{k}": v for k, v in gstate.items()}
    tensors.update({f"best.{k}": v for k, v in best.items()})
    tensors.update({f"rng.{i}": c.generator.get_state() for i, c in enumerate(clients)})
    blob = state_bytes(tensors)
    atomic_write_bytes(folder / FED_CHECKPOINT["weights"], blob)
    meta = {**meta, "format": "ecgaudit-federated-checkpoint/1",
            "weights_sha256": hashlib.sha256(blob).hexdigest()}
    atomic_write_text(folder / FED_CHECKPOINT["state"],
                      json.dumps(meta, sort_keys=True, indent=1, allow_nan=True) + "\n")


def _load(folder: Path, clients: list[SiteClient], fingerprint: str) -> tuple[
        dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    try:
        meta = json.loads((folder / FED_CHECKPOINT["state"]).read_text(encoding="utf-8"))
        blob = (folder / FED_CHECKPOINT["weights"]).read_bytes()
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"checkpoint in '{folder.name}' cannot be read: {err}") from None
    if meta.get("fingerprint") != fingerprint:
        raise InputError(f"checkpoint in '{folder.name}' was written by a different federated "
                         "run (configuration or data differ); delete it or use a new --out")
    if hashlib.sha256(blob).hexdigest() != meta.get("weights_sha256"):
        raise InputError(f"checkpoint in '{folder.name}' is incomplete; delete it to start "
                         "afresh")
    t = st_load(blob)
    for i, c in enumerate(clients):
        c.generator.set_state(t[f"rng.{i}"])
    g = {k[7:]: v for k, v in t.items() if k.startswith("global.")}
    b = {k[5:]: v for k, v in t.items() if k.startswith("best.")}
    return g, b, meta


def run_federated(
    model: nn.Module,
    clients: list[SiteClient],
    *,
    federated: FederatedConfig,
    config: TrainingConfig,
    task_index: Sequence[int],
    aggregate: Aggregate = "max",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> FederatedResult:
    """Run federated rounds in process (the reference for ``run_flower``); return the kept weights.

    Parameters
    ----------
    model : torch.nn.Module
        The parent model (modified in place; ends with the kept global weights).
    clients : list of SiteClient
        The sites, in a fixed order (aggregation order is part of determinism).
    federated : FederatedConfig
        Algorithm, rounds, local epochs, proximal weight.
    config : TrainingConfig
        Local hyper-parameters (lr, batch size, weight decay, freeze, patience, seed).
    task_index : sequence of int
        Output units trained, in the order of the label columns.
    aggregate : {"max", "mean"}
        Window aggregation of a record's logit.
    checkpoint_dir : str or Path, optional
        The global state is checkpointed there after every round.
    resume : bool
        Continue from that checkpoint.
    progress : callable, optional
        Receives ``{"event": "round", ...}`` per round.

    Returns
    -------
    FederatedResult
    """
    tasks = list(task_index)
    mu = federated.proximal_mu if federated.algorithm == "fedprox" else 0.0
    trainable = _trainable_names(model, "full", find_head(model, config.head), config.freeze)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    fp = _fingerprint(federated, config, clients, tasks)
    with deterministic(config.seed, config.num_threads):
        gstate = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(gstate)
        initial = _weighted_val(clients, model, tasks, aggregate, config.batch_size)
        best_loss, best_round, bad, history, start = initial["val_loss"], 0, 0, [], 1
        best_state = gstate
        if resume and ckpt is not None and (ckpt / FED_CHECKPOINT["state"]).is_file():
            gstate, best_state, meta = _load(ckpt, clients, fp)
            history, best_round, bad = meta["history"], meta["best_round"], meta["bad"]
            best_loss, start = meta["best_loss"], meta["round"] + 1
        stopped = False
        for rnd in range(start, federated.rounds + 1):
            if bad >= config.patience:
                stopped = True
                break
            results = [c.fit(model, gstate, trainable=trainable, config=config,
                             local_epochs=federated.local_epochs, mu=mu, tasks=tasks,
                             aggregate=aggregate, round_=rnd) for c in clients]
            gstate = fedavg([r[0] for r in results], [r[1] for r in results])
            model.load_state_dict(gstate)
            val = _weighted_val(clients, model, tasks, aggregate, config.batch_size)
            improved = val["val_loss"] < best_loss - 1e-6
            if improved:
                best_loss, best_round, bad = val["val_loss"], rnd, 0
                best_state = {k: v.clone() for k, v in gstate.items()}
            else:
                bad += 1
            entry = {"round": rnd, "improved": improved, "val_loss": val["val_loss"],
                     "sites": {c.name: {"train_loss": r[2], "n_train": r[1],
                                        **val["sites"][c.name]}
                               for c, r in zip(clients, results, strict=True)}}
            history.append(entry)
            if ckpt is not None:
                _save(ckpt, gstate, best_state, clients,
                      {"fingerprint": fp, "round": rnd, "history": history, "bad": bad,
                       "best_round": best_round, "best_loss": best_loss})
            if progress:
                progress({"event": "round", "round": rnd, "rounds": federated.rounds,
                          "val_loss": val["val_loss"], "improved": improved})
    model.load_state_dict(best_state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return FederatedResult(state_dict=best_state, history=history, best_round=best_round,
                           stopped_early=stopped, trainable=trainable,
                           initial_val={"val_loss": initial["val_loss"]})
