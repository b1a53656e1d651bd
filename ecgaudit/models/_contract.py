"""Check that a loaded model fits its config before any ECG is scored.

* weights must be finite (a NaN/inf weight gives NaN scores for every ECG);
* an ONNX model's declared input ``(batch, leads, samples)`` must match the config's number
  of leads (and window length when both are fixed);
* a TorchScript model is run once on zeros of the configured shape; if it rejects them the
  error says expected vs got in one line, never a TorchScript traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from ecgaudit.errors import ModelLoadError
from ecgaudit.models._config import ModelConfig

__all__ = ["check_finite", "check_onnx_input", "config_samples", "probe_torchscript"]

ONNX_MAGIC_FIELD = 0x08  # ModelProto field 1 (ir_version, varint) comes first


def config_samples(config: ModelConfig) -> int | None:
    """Return the input length the config fixes (window length / input_samples), if any."""
    if config.window is not None:
        return int(config.window.length)
    return config.input_samples


def _expected(config: ModelConfig) -> str:
    n = config_samples(config)
    return f"(batch, {len(config.leads)} leads, {n if n is not None else 'any'} samples)"


def check_finite(tensors: Iterable[tuple[str, torch.Tensor]], name: str) -> None:
    """Raise if any floating-point weight is NaN or infinite.

    Parameters
    ----------
    tensors : iterable of (str, Tensor)
        Named weights (``state_dict().items()``).
    name : str
        Model file base name, for the message.

    Raises
    ------
    ModelLoadError
        Naming up to five offending tensors.
    """
    bad = [k for k, t in tensors
           if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all())]
    if bad:
        more = f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ModelLoadError(
            f"model file '{name}' has NaN or infinite weights in {len(bad)} tensors: "
            f"{', '.join(bad[:5])}{more}; the model would score every ECG as NaN. Re-export "
            "the weights from a healthy checkpoint"
        )


def check_onnx_input(shape: list[Any], config: ModelConfig, name: str) -> None:
    """Compare an ONNX model's declared input shape with the model config.

    Parameters
    ----------
    shape : list
        ``session.get_inputs()[0].shape`` (ints or symbolic names).
    config : ModelConfig
        The declared contract.
    name : str
        Model file base name.

    Raises
    ------
    ModelLoadError
        With expected vs got.
    """
    got = "(" + ", ".join(str(d) for d in shape) + ")"
    if len(shape) != 3:
        raise ModelLoadError(
            f"ONNX model '{name}' takes input of shape {got}; the model config expects "
            f"{_expected(config)}"
        )
    leads, samples = shape[1], shape[2]
    n = config_samples(config)
    if (isinstance(leads, int) and leads != len(config.leads)) or (
            isinstance(samples, int) and n is not None and samples != n):
        raise ModelLoadError(
            f"ONNX model '{name}' takes input of shape {got}; the model config expects "
            f"{_expected(config)}. Fix 'leads' / 'window' in the model config, or give the "
            "matching model"
        )


def probe_torchscript(module: torch.nn.Module, config: ModelConfig, name: str,
                      device: str) -> None:
    """Run a TorchScript model once on zeros of the configured input shape.

    Skipped when the config fixes no input length (records are then scored whole).

    Raises
    ------
    ModelLoadError
        When the model rejects the configured shape or returns the wrong number of classes.
    """
    n = config_samples(config)
    if n is None:
        return
    x = torch.zeros((1, len(config.leads), n), dtype=torch.float32, device=device)
    try:
        with torch.inference_mode():
            out = module(x)
    except Exception as err:  # TorchScript raises RuntimeError with its own traceback
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        reason = lines[-1] if lines else type(err).__name__
        raise ModelLoadError(
            f"TorchScript model '{name}' rejects input of the configured shape "
            f"{_expected(config)}: {reason[:300]}. Fix 'leads' / 'window' in the model "
            "config, or give the matching model"
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != len(config.classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelLoadError(
            f"TorchScript model '{name}' returns {got} for one ECG; the model config expects "
            f"(1, {len(config.classes)}) for classes {list(config.classes)}"
        )
