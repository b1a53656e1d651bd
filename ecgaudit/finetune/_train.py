"""Deterministic, resumable training of the ``head`` and ``full`` strategies.

Records arrive as windows ``(n_records, n_windows, leads, samples)``; the model maps one
window ``(leads, samples)`` to logits, and a record's logit is the maximum (or mean) over its
windows, exactly as at inference, so the training loss is the loss of the deployed score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score
from torch import nn

from ecgaudit.errors import ComputationError, InputError
from ecgaudit.finetune._checkpoint import CHECKPOINT_FILES, load_checkpoint, save_checkpoint
from ecgaudit.finetune._config import TrainingConfig
from ecgaudit.finetune._modelutil import (
    Aggregate,
    _record_logits,
    _set_modes,
    _trainable_names,
    deterministic,
    find_head,
    predict_records,
)

__all__ = [
    "TrainResult",
    "TrainingDivergedError",
    "deterministic",
    "find_head",
    "predict_records",
    "train_model",
]

ProgressFn = Callable[[dict[str, Any]], None]

ERR_DIVERGED = (
    "training stopped: the loss became {value} at epoch {epoch}, batch {batch}. "
    "{kept} Lower training.lr (now {lr:g}) or check the inputs for extreme values."
)


class TrainingDivergedError(ComputationError):
    """The training loss or the weights became NaN or infinite; training was aborted.

    Attributes
    ----------
    epoch : int
        Epoch (1-based) in which it happened.
    last_good_epoch : int
        Last completed epoch whose checkpoint is kept (0: none; the base weights).
    """

    def __init__(self, message: str, epoch: int, last_good_epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.last_good_epoch = last_good_epoch


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`.

    Attributes
    ----------
    state_dict : dict
        The best weights (by the monitored validation metric).
    history : list of dict
        One entry per epoch: train loss, validation loss and macro AUROC.
    best_epoch : int
        Epoch whose weights were kept (0 = the base weights were never beaten).
    stopped_early : bool
        Whether early stopping ended training.
    trainable : list of str
        Names of the parameters that were trained.
    group_weights : dict
        Final group DRO weights (empty without group DRO).
    initial_val : dict
        Validation loss and macro AUROC of the weights training started from.
    """

    state_dict: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    trainable: list[str] = field(default_factory=list)
    group_weights: dict[str, float] = field(default_factory=dict)
    initial_val: dict[str, float] = field(default_factory=dict)


def _evaluate(
    model: nn.Module, x: NDArray[Any], y: NDArray[Any], tasks: list[int], aggregate: Aggregate,
    device: str, batch_size: int,
) -> tuple[float, float]:
    p = predict_records(model, x, aggregate=aggregate, batch_size=batch_size, device=device)
    p = np.clip(p[:, tasks], 1e-7, 1 - 1e-7)
    loss = float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))
    aucs = [roc_auc_score(y[:, j], p[:, j]) for j in range(y.shape[1])
            if 0 < y[:, j].sum() < len(y)]
    return loss, float(np.mean(aucs)) if aucs else math.nan


def epoch_order(n: int, groups: NDArray[np.intp] | None, gen: torch.Generator) -> torch.Tensor:
    """Return one epoch's record order: a permutation, or a group-balanced draw.

    With ``groups`` (integer codes), ``n`` records are drawn with replacement with weights
    ``1 / size(group)``, so every group is drawn equally often in expectation.
    """
    if groups is None:
        return torch.randperm(n, generator=gen)
    w = 1.0 / np.bincount(groups)[groups]
    return torch.multinomial(torch.as_tensor(w), n, replacement=True, generator=gen)


def _improved(monitor: str, value: float, best: float | None) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - 1e-6 if monitor == "val_loss" else value > best + 1e-6


def train_model(
    model: nn.Module,
    x_train: NDArray[Any],
    y_train: NDArray[Any],
    x_val: NDArray[Any],
    y_val: NDArray[Any],
    *,
    strategy: Literal["head", "full"],
    config: TrainingConfig,
    task_index: Sequence[int],
    groups_train: NDArray[Any] | None = None,
    aggregate: Aggregate = "max",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Fine-tune ``model`` in place on site records; return the best weights and history.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(batch, leads, samples)`` to logits ``(batch, classes)``.
    x_train, x_val : numpy.ndarray
        Windows ``(records, windows, leads, samples)``.
    y_train, y_val : numpy.ndarray
        Labels ``(records, len(task_index))`` in {0, 1}.
    strategy : {"head", "full"}
        Retrain the final layer only, or all layers not listed in ``config.freeze``.
    config : TrainingConfig
        Hyper-parameters, seed, sampling and group DRO options.
    task_index : sequence of int
        Output units trained, in the order of the label columns.
    groups_train : numpy.ndarray, optional
        Group label per training record (needed for group-balanced sampling / group DRO).
    aggregate : {"max", "mean"}
        How window logits become a record logit.
    checkpoint_dir : str or Path, optional
        Where ``last`` and ``best`` checkpoints are written after every epoch.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` if there is one.
    progress : callable, optional
        Called with a dict per batch (``event="batch"``) and per epoch (``event="epoch"``).

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDivergedError
        If the loss or the weights become NaN/inf (the last good checkpoint is kept).
    InputError
        If the options do not fit the model or data.
    """
    if (config.sampling == "group_balanced" or config.group_dro) and groups_train is None:
        raise InputError("group-balanced sampling and group DRO need group attributes")
    device = _device(config)
    tasks = list(task_index)
    trainable, optimizer = _optimizer(model, strategy, config, device)
    gnames, gcodes = _group_codes(groups_train)
    run = _Run(model=model, optimizer=optimizer, config=config, tasks=tasks,
               aggregate=aggregate, device=device, trainable=trainable, gcodes=gcodes,
               n_groups=0 if gnames is None else len(gnames),
               ckpt=Path(checkpoint_dir) if checkpoint_dir is not None else None,
               # ``epochs`` is left out so that a finished run can be resumed for longer.
               fingerprint={"strategy": strategy,
                            "config": config.model_dump(mode="json", exclude={"epochs"}),
                            "tasks": tasks, "n_train": len(x_train), "n_val": len(x_val)})
    yt = torch.as_tensor(np.asarray(y_train, dtype=np.float32))
    with deterministic(config.seed, config.num_threads):
        run.start(resume)
        initial = run.validate(x_val, y_val)
        if run.best is None:
            run.best = initial[0] if config.monitor == "val_loss" else initial[1]
        stopped = False
        for epoch in range(run.start_epoch, config.epochs + 1):
            if run.bad_epochs >= config.patience:
                stopped = True
                break
            losses = run.train_epoch(epoch, x_train, yt, progress)
            run.end_epoch(epoch, losses, x_val, y_val, progress)
    model.load_state_dict(run.best_state)
    model.cpu().eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return TrainResult(
        state_dict=run.best_state, history=run.history, best_epoch=run.best_epoch,
        stopped_early=stopped, trainable=trainable,
        initial_val={"val_loss": initial[0], "val_auroc": initial[1]},
        group_weights=({str(g): float(v) for g, v in zip(gnames, run.q.tolist(), strict=True)}
                       if config.group_dro and gnames is not None else {}),
    )


def _device(config: TrainingConfig) -> str:
    """``cuda`` when asked for and available, else ``cpu`` (an explicit ``cuda`` must exist)."""
    device = "cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu"
    if config.device == "cuda" and device != "cuda":
        raise InputError("training.device is 'cuda' but no CUDA device is available")
    return device


def _optimizer(model: nn.Module, strategy: str, config: TrainingConfig, device: str
               ) -> tuple[list[str], torch.optim.Optimizer]:
    """Freeze all but the trained parameters; AdamW with the head's own learning rate."""
    head = find_head(model, config.head)
    trainable = _trainable_names(model, strategy, head, config.freeze)
    tset = set(trainable)
    params = dict(model.named_parameters())
    for n, p in params.items():
        p.requires_grad_(n in tset)
    model.to(device)
    head_lr = config.head_lr or config.lr
    groups_opt = [
        {"params": [params[n] for n in trainable if not n.startswith(head + ".")], "lr": config.lr},
        {"params": [params[n] for n in trainable if n.startswith(head + ".")], "lr": head_lr},
    ]
    optimizer = torch.optim.AdamW([g for g in groups_opt if g["params"]],
                                  weight_decay=config.weight_decay)
    return trainable, optimizer


def _group_codes(groups_train: NDArray[Any] | None
                 ) -> tuple[NDArray[Any] | None, NDArray[np.intp] | None]:
    """Group names and per-record integer codes (None without groups)."""
    if groups_train is None:
        return None, None
    return np.unique(np.asarray(groups_train).astype(str), return_inverse=True)


@dataclass
class _Run:
    """The state of one training run: optimiser, RNG, best weights, history, DRO weights."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    config: TrainingConfig
    tasks: list[int]
    aggregate: Aggregate
    device: str
    trainable: list[str]
    gcodes: NDArray[np.intp] | None
    n_groups: int
    ckpt: Path | None
    fingerprint: dict[str, Any]
    start_epoch: int = 1
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    q: torch.Tensor = field(default_factory=lambda: torch.ones(1, dtype=torch.float64))
    gen: torch.Generator = field(default_factory=torch.Generator)

    def start(self, resume: bool) -> None:
        """Seed the generator and the DRO weights; resume from the checkpoint if asked."""
        self.q = torch.full((max(self.n_groups, 1),), 1.0 / max(self.n_groups, 1),
                            dtype=torch.float64)
        self.gen = torch.Generator().manual_seed(self.config.seed)
        self.best_state = _snapshot(self.model)
        ckpt = self.ckpt
        if resume and ckpt is not None and (ckpt / CHECKPOINT_FILES["state"]).is_file():
            st = load_checkpoint(ckpt, self.model, self.optimizer, self.gen, self.fingerprint)
            self.start_epoch, self.history = st["epoch"] + 1, st["history"]
            self.best, self.best_epoch = st["best"], st["best_epoch"]
            self.bad_epochs = st["bad_epochs"]
            self.best_state = st["best_state"]
            self.q = torch.tensor(st["dro_q"], dtype=torch.float64)

    def validate(self, x_val: NDArray[Any], y_val: NDArray[Any]) -> tuple[float, float]:
        """Return the validation loss and macro AUROC of the current weights."""
        return _evaluate(self.model, x_val, y_val, self.tasks, self.aggregate, self.device,
                         self.config.batch_size)

    def batches(self, n: int) -> list[torch.Tensor]:
        """One epoch's batches (group-balanced when configured; no batch of one record)."""
        cfg = self.config
        order = epoch_order(n, self.gcodes if cfg.sampling == "group_balanced" else None,
                            self.gen)
        batches = [order[i:i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
        batches = [b for b in batches if len(b) > 1]  # BatchNorm needs 2+ records
        if cfg.max_batches_per_epoch:
            batches = batches[: cfg.max_batches_per_epoch]
        return batches

    def loss(self, per: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Mean record loss, or the group-DRO loss (updating the group weights)."""
        if not (self.config.group_dro and self.gcodes is not None):
            return per.mean()
        device = self.device
        gb = torch.as_tensor(self.gcodes[idx.numpy()], device=device)
        g_loss = torch.zeros(self.n_groups, device=device).index_add(0, gb, per)
        g_cnt = torch.bincount(gb, minlength=self.n_groups).to(per.dtype)
        present = g_cnt > 0
        g_mean = torch.where(present, g_loss / g_cnt.clamp(min=1), 0.0)
        q = self.q * torch.exp(self.config.dro_eta * g_mean.detach().double().cpu()
                               * present.cpu())
        self.q = q / q.sum()
        return (self.q.to(device, per.dtype) * g_mean).sum()

    def train_epoch(self, epoch: int, x_train: NDArray[Any], yt: torch.Tensor,
                    progress: ProgressFn | None) -> list[float]:
        """One pass over the epoch's batches; stops with an error when training diverges."""
        batches = self.batches(len(x_train))
        _set_modes(self.model, set(self.trainable))
        params = dict(self.model.named_parameters())
        losses = []
        for bi, idx in enumerate(batches, start=1):
            xb = torch.as_tensor(np.asarray(x_train[idx.numpy()], dtype=np.float32))
            logits = _record_logits(self.model, xb.to(self.device), self.aggregate)[:, self.tasks]
            per = nn.functional.binary_cross_entropy_with_logits(
                logits, yt[idx].to(self.device), reduction="none").mean(dim=1)
            loss = self.loss(per, idx)
            value = float(loss.detach())
            if not math.isfinite(value):
                self.diverged(value, epoch, bi)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if not all(torch.isfinite(params[n_]).all() for n_ in self.trainable):
                self.diverged(float("nan"), epoch, bi)
            losses.append(value)
            if progress:
                progress({"event": "batch", "epoch": epoch, "batch": bi,
                          "batches": len(batches), "loss": value})
        return losses

    def diverged(self, value: float, epoch: int, batch: int) -> None:
        """Raise :class:`TrainingDivergedError` (the last good checkpoint is kept)."""
        _diverged(value, epoch, batch, self.best_epoch, self.history, self.ckpt,
                  self.config.lr)

    def end_epoch(self, epoch: int, losses: list[float], x_val: NDArray[Any],
                  y_val: NDArray[Any], progress: ProgressFn | None) -> None:
        """Validate, keep the best weights, record the epoch and write the checkpoints."""
        v_loss, v_auc = self.validate(x_val, y_val)
        current = v_loss if self.config.monitor == "val_loss" else v_auc
        improved = _improved(self.config.monitor, current, self.best)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = current, epoch, 0
            self.best_state = _snapshot(self.model)
        else:
            self.bad_epochs += 1
        self.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                             "val_loss": v_loss, "val_auroc": v_auc, "improved": improved})
        if self.ckpt is not None:
            save_checkpoint(self.ckpt, self.model, self.optimizer, self.gen, self.fingerprint, {
                "epoch": epoch, "history": self.history, "best": self.best,
                "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "dro_q": self.q.tolist(),
            }, self.best_state)
        if progress:
            progress({"event": "epoch", **self.history[-1], "epochs": self.config.epochs})


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _diverged(value: float, epoch: int, batch: int, best_epoch: int,
              history: list[dict[str, Any]], ckpt: Path | None, lr: float) -> None:
    last = history[-1]["epoch"] if history else 0
    if ckpt is not None and last:
        kept = (f"The last good checkpoint (epoch {last}) is kept in "
                f"'{ckpt.name}/{CHECKPOINT_FILES['weights']}'; resume from it after the fix.")
    else:
        kept = "No epoch had completed, so the base model's weights are unchanged."
    raise TrainingDivergedError(
        ERR_DIVERGED.format(value=value, epoch=epoch, batch=batch, kept=kept, lr=lr),
        epoch=epoch, last_good_epoch=last,
    )

