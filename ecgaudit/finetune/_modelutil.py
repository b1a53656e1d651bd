"""Model helpers shared by every training strategy: seeding, head, trainable layers, scores.

Records arrive as windows ``(n_records, n_windows, leads, samples)``; a record's logit is the
maximum (or mean) over its windows, exactly as at inference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ecgaudit.errors import InputError

__all__ = ["Aggregate", "deterministic", "find_head", "predict_records"]

Aggregate = Literal["max", "mean"]


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
