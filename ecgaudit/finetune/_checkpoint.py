"""Resumable training checkpoints: safetensors for tensors, JSON for everything else.

Nothing is pickled. ``last.safetensors`` holds the model weights (``model.*``), the optimizer
moments (``optim.<i>.<name>``) and the RNG states; ``best.safetensors`` the best weights so
far; ``last.json`` the epoch, history, early-stopping state, optimizer hyper-parameters, the
SHA-256 of ``last.safetensors`` (written last, it marks the checkpoint complete) and a
fingerprint of the run configuration (a checkpoint only resumes the run that wrote it).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ecgaudit.errors import InputError
from ecgaudit.io import atomic_write_bytes, atomic_write_text

__all__ = ["CHECKPOINT_FILES", "load_checkpoint", "save_checkpoint", "state_bytes", "state_sha256"]

CHECKPOINT_FILES = {"weights": "last.safetensors", "state": "last.json", "best": "best.safetensors"}

ERR_MISMATCH = (
    "checkpoint in '{name}' was written by a different fine-tuning run ({what} differ); "
    "delete the folder or use a new --out to start afresh"
)


def state_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """Serialise tensors to safetensors bytes (contiguous CPU copies; deterministic)."""
    return st_save({k: v.detach().cpu().contiguous() for k, v in sorted(state.items())})


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """Return the SHA-256 of the safetensors serialisation of a state dict."""
    return hashlib.sha256(state_bytes(state)).hexdigest()


def _fingerprint_hash(fingerprint: dict[str, Any]) -> str:
    text = json.dumps(fingerprint, sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def save_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    fingerprint: dict[str, Any],
    state: dict[str, Any],
    best_state: dict[str, torch.Tensor],
) -> None:
    """Write a complete, resumable checkpoint atomically (see module docstring)."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, slots in opt["state"].items():
        for name, value in slots.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{idx}.{name}"] = t
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.generator"] = generator.get_state()
    blob = state_bytes(tensors)
    atomic_write_bytes(folder / CHECKPOINT_FILES["best"], state_bytes(best_state))
    atomic_write_bytes(folder / CHECKPOINT_FILES["weights"], blob)
    meta = {
        "format": "ecgaudit-finetune-checkpoint/1",
        "fingerprint": _fingerprint_hash(fingerprint),
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "param_groups": opt["param_groups"],
        **state,
    }
    atomic_write_text(folder / CHECKPOINT_FILES["state"],
                      json.dumps(meta, sort_keys=True, indent=1, allow_nan=True) + "\n")


def load_checkpoint(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    fingerprint: dict[str, Any],
) -> dict[str, Any]:
    """Restore model, optimizer and RNG states; return the JSON state plus ``best_state``.

    Raises
    ------
    InputError
        If the checkpoint is incomplete, corrupt or from a different run.
    """
    try:
        meta = json.loads((folder / CHECKPOINT_FILES["state"]).read_text(encoding="utf-8"))
        blob = (folder / CHECKPOINT_FILES["weights"]).read_bytes()
        best_blob = (folder / CHECKPOINT_FILES["best"]).read_bytes()
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"checkpoint in '{folder.name}' cannot be read: {err}") from None
    if meta.get("fingerprint") != _fingerprint_hash(fingerprint):
        raise InputError(ERR_MISMATCH.format(name=folder.name, what="configuration or data"))
    if hashlib.sha256(blob).hexdigest() != meta.get("weights_sha256"):
        raise InputError(
            f"checkpoint in '{folder.name}' is incomplete ({CHECKPOINT_FILES['weights']} does "
            "not match its JSON state); delete the folder to start afresh"
        )
    tensors = st_load(blob)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
                          strict=True)
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    generator.set_state(tensors["rng.generator"])
    meta["best_state"] = dict(st_load(best_blob))
    return meta
