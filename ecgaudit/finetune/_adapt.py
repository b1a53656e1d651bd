"""Unsupervised domain adaptation: DANN and Deep CORAL with skada's losses.

Labelled source records and unlabelled target records train one model: the task loss
(binary cross-entropy of the deployed record logit, as in :mod:`ecgaudit.finetune._train`)
on source batches plus ``weight`` times a domain loss on the features entering the final
layer (``training.head``), computed per window:

- ``coral``: Deep CORAL, :func:`skada.deep.losses.deepcoral_loss` (squared Frobenius distance
  of the source and target feature covariances, / 4 d^2);
- ``dann``: a domain classifier behind skada's ``GradientReversalLayer``, trained with
  :class:`skada.deep.DANNLoss` (binary cross-entropy, source 0 / target 1); the reversal
  strength ramps up as ``2 / (1 + exp(-10 p)) - 1`` over training progress ``p``.

skada's own estimators (``skada.deep.DANN`` / ``DeepCoral``, skorch nets) are not used: they
fit one sample per input row with their own loop, while here a record is several windows
whose logit is their maximum, training must be seeded, checkpointed and restorable, and the
kept epoch is chosen on the source validation loss only. Target labels are never given to
this module: :func:`train_adapted` receives target windows only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from skada.deep import DANNLoss
from skada.deep.losses import deepcoral_loss
from skada.deep.modules import GradientReversalLayer
from torch import nn

from ecgaudit.errors import InputError
from ecgaudit.finetune._checkpoint import CHECKPOINT_FILES, load_checkpoint, save_checkpoint
from ecgaudit.finetune._config import TrainingConfig
from ecgaudit.finetune._fedconfig import AdaptConfig
from ecgaudit.finetune._train import (
    Aggregate,
    _diverged,
    _evaluate,
    _set_modes,
    _trainable_names,
    deterministic,
    epoch_order,
    find_head,
)

__all__ = ["AdaptResult", "feature_coral_distance", "train_adapted"]

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class AdaptResult:
    """Outcome of :func:`train_adapted`."""

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    trainable: list[str] = field(default_factory=list)
    initial: dict[str, float] = field(default_factory=dict)


class _Features:
    """Forward hook capturing the input of the final layer (the features)."""

    def __init__(self, model: nn.Module, head: str) -> None:
        self.value: torch.Tensor | None = None
        self.handle = dict(model.named_modules())[head].register_forward_hook(self._hook)

    def _hook(self, _m: nn.Module, inputs: tuple[torch.Tensor, ...], _o: torch.Tensor) -> None:
        self.value = inputs[0]


def _forward(model: nn.Module, hook: _Features, xb: torch.Tensor,
             aggregate: Aggregate) -> tuple[torch.Tensor, torch.Tensor]:
    """Record logits ``(n, classes)`` and window features ``(n * windows, d)``."""
    n, w = xb.shape[0], xb.shape[1]
    out = model(xb.reshape(n * w, *xb.shape[2:])).reshape(n, w, -1)
    feats = hook.value
    assert feats is not None
    if aggregate == "max":
        return out.amax(dim=1), feats.reshape(n * w, -1)
    p = torch.sigmoid(out).mean(dim=1).clamp(1e-7, 1 - 1e-7)
    return torch.log(p) - torch.log1p(-p), feats.reshape(n * w, -1)


def _features(model: nn.Module, hook: _Features, x: NDArray[Any], batch: int) -> torch.Tensor:
    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(x), batch):
            xb = torch.as_tensor(np.asarray(x[s:s + batch], dtype=np.float32))
            _forward(model, hook, xb, "max")
            assert hook.value is not None
            out.append(hook.value.reshape(len(xb) * xb.shape[1], -1).clone())
    return torch.cat(out)


def feature_coral_distance(model: nn.Module, head: str, x_a: NDArray[Any], x_b: NDArray[Any],
                           batch: int = 64) -> float:
    """Deep CORAL distance between the feature covariances of two sets of records.

    A label-free diagnostic of the remaining domain gap (reported, not used for selection).
    """
    hook = _Features(model, head)
    try:
        fa, fb = _features(model, hook, x_a, batch), _features(model, hook, x_b, batch)
    finally:
        hook.handle.remove()
    return float(deepcoral_loss(fa.double(), fb.double()))


def _domain_head(dim: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def _steps_per_epoch(n: int, config: TrainingConfig) -> int:
    """Optimiser steps per epoch (batches of 2+ records, capped by max_batches_per_epoch)."""
    per_epoch = len([i for i in range(0, n, config.batch_size)
                     if min(config.batch_size, n - i) > 1])
    if config.max_batches_per_epoch:
        per_epoch = min(per_epoch, config.max_batches_per_epoch)
    return per_epoch


def _epoch_batches(n: int, nt: int, config: TrainingConfig, gen: torch.Generator
                   ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One epoch's source batches and the target order they are paired with (drawn in order)."""
    order = epoch_order(n, None, gen)
    t_order = torch.cat([epoch_order(nt, None, gen) for _ in range(
        math.ceil(n / max(nt, 1)) + 1)])
    batches = [b for b in (order[i:i + config.batch_size]
                           for i in range(0, n, config.batch_size)) if len(b) > 1]
    if config.max_batches_per_epoch:
        batches = batches[: config.max_batches_per_epoch]
    return batches, t_order


def _domain_loss(model: nn.Module, hook: _Features, dom: nn.Module, dann: DANNLoss,
                 fs: torch.Tensor, xt: torch.Tensor, aggregate: Aggregate, adapt: AdaptConfig,
                 progress: float, dtype: torch.dtype) -> torch.Tensor:
    """Domain-alignment loss of one batch: Deep CORAL, or DANN with its reversal schedule.

    With ``adapt.weight == 0`` (the source-only baseline) the target is never forwarded.
    """
    if adapt.weight == 0.0:
        return torch.zeros((), dtype=dtype)
    _, ft = _forward(model, hook, xt, aggregate)
    if adapt.method == "coral":
        return deepcoral_loss(fs, ft)
    alpha = 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0
    ds = dom(GradientReversalLayer.apply(fs, alpha)).squeeze(-1)
    dt = dom(GradientReversalLayer.apply(ft, alpha)).squeeze(-1)
    return dann(domain_pred_s=ds, domain_pred_t=dt)


@dataclass(frozen=True)
class _Step:
    """What one optimiser step of domain adaptation needs (models, losses, schedule)."""

    model: nn.Module
    hook: _Features
    dom: nn.Module
    dann: DANNLoss
    optimizer: torch.optim.Optimizer
    adapt: AdaptConfig
    tasks: list[int]
    aggregate: Aggregate
    lr: float
    steps_total: int


def _adapt_epoch(s: _Step, step: int, batches: list[torch.Tensor], t_order: torch.Tensor,
                 x_source: NDArray[Any], x_target: NDArray[Any], yt: torch.Tensor, epoch: int,
                 best_epoch: int, task_l: list[float], dom_l: list[float]) -> int:
    """Train one epoch: task loss on source batches plus the weighted domain loss.

    Appends each batch's task and domain loss to ``task_l`` / ``dom_l`` and returns the
    step counter after the epoch (DANN's reversal schedule runs on it).
    """
    for bi, idx in enumerate(batches, start=1):
        tb = t_order[(bi - 1) * len(idx):(bi - 1) * len(idx) + len(idx)]
        if len(tb) < 2:
            tb = t_order[:2]
        xs = torch.as_tensor(np.asarray(x_source[idx.numpy()], dtype=np.float32))
        xt = torch.as_tensor(np.asarray(x_target[tb.numpy()], dtype=np.float32))
        logits, fs = _forward(s.model, s.hook, xs, s.aggregate)
        task = nn.functional.binary_cross_entropy_with_logits(logits[:, s.tasks], yt[idx])
        da = _domain_loss(s.model, s.hook, s.dom, s.dann, fs, xt, s.aggregate, s.adapt,
                          step / max(s.steps_total, 1), task.dtype)
        loss = task + s.adapt.weight * da
        value = float(loss.detach())
        if not math.isfinite(value):
            _diverged(value, epoch, bi, best_epoch, [], None, s.lr)
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s.optimizer.step()
        step += 1
        task_l.append(float(task.detach()))
        dom_l.append(float(da.detach()))
    return step


def train_adapted(
    model: nn.Module,
    x_source: NDArray[Any],
    y_source: NDArray[Any],
    x_source_val: NDArray[Any],
    y_source_val: NDArray[Any],
    x_target: NDArray[Any],
    *,
    adapt: AdaptConfig,
    config: TrainingConfig,
    task_index: Sequence[int],
    aggregate: Aggregate = "max",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> AdaptResult:
    """Adapt ``model`` in place to unlabelled target records; return the kept weights.

    Parameters
    ----------
    model : torch.nn.Module
        The parent model (all layers not in ``config.freeze`` are trained).
    x_source, y_source : numpy.ndarray
        Labelled source windows and 0/1 labels.
    x_source_val, y_source_val : numpy.ndarray
        Labelled source validation records (model selection).
    x_target : numpy.ndarray
        Unlabelled target windows (no labels are passed, by design).
    adapt : AdaptConfig
        Method (``dann`` / ``coral``), loss weight, domain-classifier width, selection.
    config : TrainingConfig
        Epochs, lr, batch size, patience, seed, freeze, head.
    task_index : sequence of int
        Output units trained.
    aggregate : {"max", "mean"}
        Window aggregation.
    checkpoint_dir : str or Path, optional
        Model, domain classifier, optimizer and RNG states are checkpointed there after
        every epoch (safetensors + JSON).
    resume : bool
        Continue from that checkpoint (same result as an uninterrupted run).
    progress : callable, optional
        Receives ``{"event": "adapt_epoch", ...}``.

    Returns
    -------
    AdaptResult
    """
    if len(x_target) < 2:
        raise InputError("domain adaptation needs at least 2 unlabelled target ECGs in the "
                         f"adaptation pool (found {len(x_target)})")
    tasks = list(task_index)
    head = find_head(model, config.head)
    trainable = _trainable_names(model, "full", head, config.freeze)
    params = dict(model.named_parameters())
    for n, p in params.items():
        p.requires_grad_(n in set(trainable))
    dim = dict(model.named_modules())[head].in_features  # type: ignore[union-attr]
    hook = _Features(model, head)
    with deterministic(config.seed, config.num_threads):
        gen = torch.Generator().manual_seed(config.seed)
        dom = _domain_head(int(dim), adapt.domain_hidden)
        opt_params = [params[n] for n in trainable]
        if adapt.method == "dann":
            opt_params += list(dom.parameters())
        optimizer = torch.optim.AdamW(opt_params, lr=config.lr,
                                      weight_decay=config.weight_decay)
        dann = DANNLoss(domain_criterion=nn.BCEWithLogitsLoss())
        yt = torch.as_tensor(np.asarray(y_source, dtype=np.float32))
        v_loss, v_auc = _evaluate(model, x_source_val, y_source_val, tasks, aggregate, "cpu",
                                  config.batch_size)
        initial = {"source_val_loss": v_loss, "source_val_auroc": v_auc}
        best, best_epoch, bad, history = v_loss, 0, 0, []
        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        n, nt = len(x_source), len(x_target)
        steps_total = _steps_per_epoch(n, config) * config.epochs
        step, start = 0, 1
        both = nn.ModuleDict({"model": model, "domain": dom})
        ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
        # epochs stay in the fingerprint: DANN's reversal schedule depends on them
        fingerprint = {"adapt": adapt.model_dump(mode="json"), "tasks": tasks,
                       "config": config.model_dump(mode="json"),
                       "n": [n, nt, len(x_source_val)]}
        if resume and ckpt is not None and (ckpt / CHECKPOINT_FILES["state"]).is_file():
            st = load_checkpoint(ckpt, both, optimizer, gen, fingerprint)
            start, history, best = st["epoch"] + 1, st["history"], st["best"]
            best_epoch, bad, step = st["best_epoch"], st["bad_epochs"], st["step"]
            best_state = st["best_state"]
        for epoch in range(start, config.epochs + 1):
            if adapt.selection == "source_val_loss" and bad >= config.patience:
                break
            batches, t_order = _epoch_batches(n, nt, config, gen)
            _set_modes(model, set(trainable))
            dom.train()
            task_l, dom_l = [], []
            step = _adapt_epoch(_Step(model, hook, dom, dann, optimizer, adapt, tasks,
                                      aggregate, config.lr, steps_total),
                                step, batches, t_order, x_source, x_target, yt, epoch,
                                best_epoch, task_l, dom_l)
            v_loss, v_auc = _evaluate(model, x_source_val, y_source_val, tasks, aggregate,
                                      "cpu", config.batch_size)
            improved = adapt.selection == "last" or v_loss < best - 1e-6
            if improved:
                best, best_epoch, bad = v_loss, epoch, 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
            history.append({"epoch": epoch, "task_loss": float(np.mean(task_l)),
                            "domain_loss": float(np.mean(dom_l)), "source_val_loss": v_loss,
                            "source_val_auroc": v_auc, "improved": improved})
            if ckpt is not None:
                save_checkpoint(ckpt, both, optimizer, gen, fingerprint, {
                    "epoch": epoch, "history": history, "best": best,
                    "best_epoch": best_epoch, "bad_epochs": bad, "step": step}, best_state)
            if progress:
                progress({"event": "adapt_epoch", **history[-1], "epochs": config.epochs})
    hook.handle.remove()
    model.load_state_dict(best_state)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return AdaptResult(state_dict=best_state, history=history, best_epoch=best_epoch,
                       trainable=trainable, initial=initial)
