"""Deterministic, resumable training of the ``head`` and ``full`` strategies.

Records arrive as windows ``(n_records, n_windows, leads, samples)``; the model maps one
window ``(leads, samples)`` to logits, and a record's logit is the maximum (or mean) over its
windows, exactly as at inference, so the training loss is the loss of the deployed score.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
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

__all__ = [
    "TrainResult",
    "TrainingDivergedError",
    "deterministic",
    "find_head",
    "predict_records",
    "train_model",
]

Aggregate = Literal["max", "mean"]
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


@contextlib.contextmanager
def deterministic(seed: int, num_threads: int | None = None) -> Iterator[None]:
    """Seed torch and force deterministic algorithms for the duration of the block.

    The global RNG state, the deterministic-algorithms flag and the thread count are restored
    afterwards, so callers are unaffected.
    """
    prev_flag = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        if num_threads:
            torch.set_num_threads(num_threads)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev_flag, warn_only=prev_warn)
            torch.set_num_threads(prev_threads)


def find_head(model: nn.Module, name: str | None = None) -> str:
    """Return the name of the final layer: ``name`` if given, else the last ``nn.Linear``.

    Raises
    ------
    InputError
        If ``name`` is not a submodule or the model has no linear layer.
    """
    modules = dict(model.named_modules())
    if name is not None:
        if name not in modules:
            raise InputError(
                f"training.head '{name}' is not a layer of the model; layers with weights: "
                f"{sorted({n.rsplit('.', 1)[0] for n, _ in model.named_parameters()})}"
            )
        return name
    linear = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    if not linear:
        raise InputError("the model has no nn.Linear layer; set training.head to its final layer")
    return linear[-1]


def _trainable_names(
    model: nn.Module, strategy: str, head: str, freeze: Sequence[str]
) -> list[str]:
    names = [n for n, _ in model.named_parameters()]
    if strategy == "head":
        keep = [n for n in names if n.startswith(head + ".")]
    else:
        keep = [n for n in names if not any(n == f or n.startswith(f + ".") for f in freeze)]
    unknown = [f for f in freeze if not any(n == f or n.startswith(f + ".") for n in names)]
    if unknown:
        raise InputError(f"training.freeze names unknown layers {unknown}; parameters: {names}")
    if not keep:
        raise InputError("nothing left to train: every parameter is frozen")
    return keep


def _set_modes(model: nn.Module, trainable: set[str]) -> None:
    """Train mode for modules with trainable weights; frozen modules keep eval (BN stats)."""
    model.train()
    for mod_name, module in model.named_modules():
        own = [f"{mod_name}.{p}" if mod_name else p for p, _ in module.named_parameters()]
        if own and not any(p in trainable for p in own):
            module.eval()


def _record_logits(model: nn.Module, xb: torch.Tensor, aggregate: Aggregate) -> torch.Tensor:
    """Record logits: the max over windows, or the logit of the mean window probability.

    Both equal the logit of the record score that inference reports (the maximum, resp.
    mean, of the windows' sigmoid outputs), so training optimises the deployed score.
    """
    n, w = xb.shape[0], xb.shape[1]
    out = model(xb.reshape(n * w, *xb.shape[2:])).reshape(n, w, -1)
    if aggregate == "max":
        return out.amax(dim=1)
    p = torch.sigmoid(out).mean(dim=1).clamp(1e-7, 1 - 1e-7)
    return torch.log(p) - torch.log1p(-p)


def predict_records(
    model: nn.Module,
    x: NDArray[np.floating[Any]],
    *,
    aggregate: Aggregate = "max",
    batch_size: int = 64,
    device: str = "cpu",
) -> NDArray[np.float64]:
    """Return per-record sigmoid probabilities ``(n_records, n_classes)`` in eval mode."""
    model.eval()
    outs = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(np.asarray(x[start:start + batch_size], dtype=np.float32))
            outs.append(torch.sigmoid(_record_logits(model, xb.to(device), aggregate)).cpu())
    return torch.cat(outs).double().numpy() if outs else np.zeros((0, 0))


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
    device = "cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu"
    if config.device == "cuda" and device != "cuda":
        raise InputError("training.device is 'cuda' but no CUDA device is available")
    tasks = list(task_index)
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
    gnames: NDArray[Any] | None = None
    gcodes: NDArray[np.intp] | None = None
    if groups_train is not None:
        gnames, gcodes = np.unique(np.asarray(groups_train).astype(str), return_inverse=True)
    n_groups = 0 if gnames is None else len(gnames)
    q = torch.full((max(n_groups, 1),), 1.0 / max(n_groups, 1), dtype=torch.float64)
    yt = torch.as_tensor(np.asarray(y_train, dtype=np.float32))
    # ``epochs`` is left out so that a finished run can be resumed to train for longer.
    fingerprint = {"strategy": strategy, "config": config.model_dump(mode="json",
                                                                   exclude={"epochs"}),
                   "tasks": tasks, "n_train": len(x_train), "n_val": len(x_val)}
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    with deterministic(config.seed, config.num_threads):
        gen = torch.Generator().manual_seed(config.seed)
        start_epoch, history, best, best_epoch, bad_epochs = 1, [], None, 0, 0
        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if resume and ckpt is not None and (ckpt / CHECKPOINT_FILES["state"]).is_file():
            st = load_checkpoint(ckpt, model, optimizer, gen, fingerprint)
            start_epoch, history = st["epoch"] + 1, st["history"]
            best, best_epoch, bad_epochs = st["best"], st["best_epoch"], st["bad_epochs"]
            best_state, q = st["best_state"], torch.tensor(st["dro_q"], dtype=torch.float64)
        v_loss, v_auc = _evaluate(model, x_val, y_val, tasks, aggregate, device,
                                  config.batch_size)
        initial = {"val_loss": v_loss, "val_auroc": v_auc}
        if best is None:
            best = v_loss if config.monitor == "val_loss" else v_auc
        n = len(x_train)
        stopped = False
        for epoch in range(start_epoch, config.epochs + 1):
            if bad_epochs >= config.patience:
                stopped = True
                break
            order = epoch_order(n, gcodes if config.sampling == "group_balanced" else None,
                                gen)
            batches = [order[i:i + config.batch_size] for i in range(0, n, config.batch_size)]
            batches = [b for b in batches if len(b) > 1]  # BatchNorm needs 2+ records
            if config.max_batches_per_epoch:
                batches = batches[: config.max_batches_per_epoch]
            _set_modes(model, tset)
            losses = []
            for bi, idx in enumerate(batches, start=1):
                xb = torch.as_tensor(np.asarray(x_train[idx.numpy()], dtype=np.float32))
                logits = _record_logits(model, xb.to(device), aggregate)[:, tasks]
                per = nn.functional.binary_cross_entropy_with_logits(
                    logits, yt[idx].to(device), reduction="none").mean(dim=1)
                if config.group_dro and gcodes is not None:
                    gb = torch.as_tensor(gcodes[idx.numpy()], device=device)
                    g_loss = torch.zeros(n_groups, device=device).index_add(0, gb, per)
                    g_cnt = torch.bincount(gb, minlength=n_groups).to(per.dtype)
                    present = g_cnt > 0
                    g_mean = torch.where(present, g_loss / g_cnt.clamp(min=1), 0.0)
                    q = q * torch.exp(config.dro_eta * g_mean.detach().double().cpu()
                                      * present.cpu())
                    q = q / q.sum()
                    loss = (q.to(device, per.dtype) * g_mean).sum()
                else:
                    loss = per.mean()
                value = float(loss.detach())
                if not math.isfinite(value):
                    _diverged(value, epoch, bi, best_epoch, history, ckpt, config.lr)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if not all(torch.isfinite(params[n_]).all() for n_ in trainable):
                    _diverged(float("nan"), epoch, bi, best_epoch, history, ckpt, config.lr)
                losses.append(value)
                if progress:
                    progress({"event": "batch", "epoch": epoch, "batch": bi,
                              "batches": len(batches), "loss": value})
            v_loss, v_auc = _evaluate(model, x_val, y_val, tasks, aggregate, device,
                                      config.batch_size)
            current = v_loss if config.monitor == "val_loss" else v_auc
            improved = _improved(config.monitor, current, best)
            if improved:
                best, best_epoch, bad_epochs = current, epoch, 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
            history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                            "val_loss": v_loss, "val_auroc": v_auc, "improved": improved})
            if ckpt is not None:
                save_checkpoint(ckpt, model, optimizer, gen, fingerprint, {
                    "epoch": epoch, "history": history, "best": best, "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs, "dro_q": q.tolist(),
                }, best_state)
            if progress:
                progress({"event": "epoch", **history[-1], "epochs": config.epochs})
    model.load_state_dict(best_state)
    model.cpu().eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return TrainResult(
        state_dict=best_state, history=history, best_epoch=best_epoch, stopped_early=stopped,
        trainable=trainable, initial_val=initial,
        group_weights=({str(g): float(v) for g, v in zip(gnames, q.tolist(), strict=True)}
                       if config.group_dro and gnames is not None else {}),
    )


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

