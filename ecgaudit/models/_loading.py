"""Safe model loading: safetensors, plain state dicts, TorchScript and ONNX. Never pickle.

The format is recognised from the file's first bytes, not its name:

* safetensors (8-byte header length + JSON header) -> weights into a registered architecture;
* a zip written by ``torch.save`` -> ``torch.load(weights_only=True)`` (tensors only);
* a TorchScript zip (``code/`` + ``constants.pkl``) -> ``torch.jit.load``;
* an ONNX protobuf (whatever its suffix) -> onnxruntime;
* a raw pickle stream, joblib / compressed pickle, or a ``torch.save`` zip holding Python
  objects (a full ``nn.Module``) -> refused with :class:`ModelLoadError`, nothing executed.
"""

from __future__ import annotations

import hashlib
import json
import struct
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ecgaudit.errors import InputError, ModelLoadError
from ecgaudit.models._architectures import build_architecture
from ecgaudit.models._config import ModelConfig
from ecgaudit.models._contract import (
    ONNX_MAGIC_FIELD,
    check_finite,
    check_onnx_input,
    probe_torchscript,
)

__all__ = ["PICKLE_REFUSED", "LoadedModel", "detect_format", "load_model", "resolve_device"]

#: Explanation given when a file would need unpickling to load.
PICKLE_REFUSED = (
    "ecgaudit never unpickles model files: loading a pickle can run arbitrary code. "
    "Provide the weights as safetensors (safetensors.torch.save_file(model.state_dict(), "
    "'model.safetensors')) or a plain state dict (torch.save(model.state_dict(), 'model.pt')) "
    "with an architecture named in the model config, or export the whole model to ONNX."
)
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".dill")
_COMPRESSED_MAGIC = {
    b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ": "xz", b"\x04\x22\x4d\x18": "lz4",
    b"\x78\x01": "zlib", b"\x78\x5e": "zlib", b"\x78\x9c": "zlib", b"\x78\xda": "zlib",
}
_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
_MAX_LISTED = 10

Format = Literal["safetensors", "state_dict", "torchscript", "onnx"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _looks_onnx(head: bytes) -> bool:
    """Return True if ``head`` starts like an ONNX ModelProto (ir_version varint first)."""
    return len(head) >= 4 and head[0] == ONNX_MAGIC_FIELD and 1 <= head[1] <= 0x20 and (
        head[2] in (0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42))


def detect_format(path: str | Path) -> Format:
    """Recognise a model file's format from its content.

    Parameters
    ----------
    path : str or Path
        The model file.

    Returns
    -------
    str
        ``"safetensors"``, ``"state_dict"``, ``"torchscript"`` or ``"onnx"``.

    Raises
    ------
    ModelLoadError
        For pickle, joblib and other unsafe or unknown formats (explaining what to provide).
    """
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"model file '{p.name}' does not exist")
    with p.open("rb") as fh:
        head = fh.read(16)
    size = p.stat().st_size
    name = p.name
    if p.suffix.lower() in _PICKLE_SUFFIXES:
        raise ModelLoadError(f"model file '{name}' is a Python pickle; refused. {PICKLE_REFUSED}")
    if len(head) >= 9 and head[8:9] == b"{":
        (hlen,) = struct.unpack("<Q", head[:8])
        if 8 + hlen <= size:
            return "safetensors"
    if head[:1] == b"\x80":
        raise ModelLoadError(f"model file '{name}' is a Python pickle; refused. {PICKLE_REFUSED}")
    for magic, kind in _COMPRESSED_MAGIC.items():
        if head.startswith(magic):
            raise ModelLoadError(
                f"model file '{name}' is {kind}-compressed (joblib / compressed pickle?); "
                f"refused. {PICKLE_REFUSED}"
            )
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile:
            raise ModelLoadError(f"model file '{name}' is a damaged zip archive") from None
        if any(n.endswith("constants.pkl") for n in names) and any("/code/" in n for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "state_dict"
        raise ModelLoadError(f"model file '{name}' is a zip archive but not a PyTorch file")
    if _looks_onnx(head) or p.suffix.lower() == ".onnx":
        return "onnx"
    raise ModelLoadError(
        f"model file '{name}': unrecognised format; give safetensors, a torch.save state dict "
        "(.pt), TorchScript or ONNX (.onnx)"
    )


def resolve_device(device: str) -> str:
    """Check a device string: ``cpu`` (default), ``cuda``/``cuda:N`` if available, or ``auto``.

    Raises
    ------
    InputError
        If CUDA is asked for but not available.
    """
    d = device.strip().lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return "cpu"
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(
                f"device '{device}' was requested but CUDA is not available on this machine "
                "(or this torch build is CPU-only); use --device cpu"
            )
        return d
    raise InputError(f"unknown device '{device}'; use cpu, cuda, cuda:N or auto")


@dataclass
class LoadedModel:
    """A model ready for inference, whatever file format it came from.

    Call it with a float32 array ``(batch, leads, samples)`` to get raw outputs
    ``(batch, classes)`` (before the output activation).

    Attributes
    ----------
    config : ModelConfig
        The declared contract.
    format : str
        ``safetensors``, ``state_dict``, ``torchscript`` or ``onnx``.
    module : torch.nn.Module or None
        The torch module (None for ONNX); usable for fine-tuning when ``format`` is
        ``safetensors`` or ``state_dict``.
    device : str
        Where inference runs.
    file_name, sha256 : str
        Provenance for the manifest (base name only).
    """

    config: ModelConfig
    format: Format
    module: torch.nn.Module | None
    device: str
    file_name: str
    sha256: str
    session: Any = None
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Return raw float32 outputs ``(batch, classes)`` for ``(batch, leads, samples)``."""
        if self.session is not None:
            name = self.session.get_inputs()[0].name
            out = self.session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
            return np.asarray(out, dtype=np.float32)
        assert self.module is not None
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
            return self.module(t).float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        """Return provenance for the manifest (no paths)."""
        return {"file": self.file_name, "sha256": self.sha256, "format": self.format,
                "architecture": self.config.architecture, "device": self.device}


def _tensor_dict(obj: Any, name: str) -> dict[str, torch.Tensor]:
    """Extract a flat name -> tensor mapping from a loaded checkpoint."""
    def is_sd(o: Any) -> bool:
        return isinstance(o, Mapping) and bool(o) and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in o.items())

    if not is_sd(obj) and isinstance(obj, Mapping):
        nested = [obj[k] for k in _NESTED_KEYS if k in obj and is_sd(obj[k])]
        if nested:
            obj = nested[0]
    if not is_sd(obj):
        raise ModelLoadError(
            f"model file '{name}' does not hold a state dict (a mapping of tensor names to "
            f"tensors), found {type(obj).__name__}. {PICKLE_REFUSED}"
        )
    sd = dict(obj)
    if all(k.startswith("module.") for k in sd):  # saved from DataParallel
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _read_weights(p: Path, fmt: Format) -> dict[str, torch.Tensor]:
    if fmt == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelLoadError(
                f"model file '{p.name}': invalid safetensors file: {err}"
            ) from None
    try:
        with p.open("rb") as fh:  # a file object: torch must not dispatch on the suffix
            obj = torch.load(fh, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError / RuntimeError from the weights-only unpickler
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            raise ModelLoadError(
                f"model file '{p.name}' holds pickled Python objects (e.g. a whole nn.Module, "
                f"or a training checkpoint with custom classes), not just tensors; refused. "
                f"{PICKLE_REFUSED}"
            ) from None
        raise ModelLoadError(f"model file '{p.name}' cannot be read (truncated?): {err}") from None
    return _tensor_dict(obj, p.name)


def check_state_dict(module: torch.nn.Module, sd: Mapping[str, torch.Tensor], name: str) -> None:
    """Load ``sd`` into ``module`` strictly, or raise listing every mismatch.

    Raises
    ------
    ModelLoadError
        Listing missing keys, unexpected keys and shape mismatches.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", shapes)):
            if items:
                more = f" (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
                parts.append(f"{label} ({len(items)}): {', '.join(items[:_MAX_LISTED])}{more}")
        raise ModelLoadError(
            f"model file '{name}' does not match architecture "
            f"'{getattr(module, 'arch_name', type(module).__name__)}': " + "; ".join(parts)
            + ". Check 'architecture', 'architecture_params', 'leads' and 'classes' in the "
            "model config."
        )
    module.load_state_dict(sd, strict=True)


def load_model(
    model_path: str | Path, config: ModelConfig, *, device: str = "cpu",
    threads: int | None = None,
) -> LoadedModel:
    """Load a model file safely according to its config.

    Parameters
    ----------
    model_path : str or Path
        safetensors / state dict (needs ``config.architecture``), TorchScript, or ONNX.
    config : ModelConfig
        The model's declared contract.
    device : str
        ``cpu`` (default), ``cuda``, ``cuda:N`` or ``auto``.
    threads : int, optional
        Intra-op threads for ONNX Runtime (torch threads are set by the caller).

    Returns
    -------
    LoadedModel
        In evaluation mode on ``device``.

    Raises
    ------
    ModelLoadError
        If the file is unsafe (pickle), unreadable, or does not match the architecture.
    """
    p = Path(model_path)
    fmt = detect_format(p)
    dev = resolve_device(device)
    digest = _sha256(p)
    if fmt == "onnx":
        return _load_onnx(p, config, dev, digest, threads)
    if fmt == "torchscript":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(str(p), map_location=dev)
        except Exception as err:
            first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
            raise ModelLoadError(
                f"TorchScript file '{p.name}' cannot be loaded: {first}") from None
        check_finite(module.state_dict().items(), p.name)
        probe_torchscript(module.eval(), config, p.name, dev)
        return LoadedModel(config, fmt, module.eval(), dev, p.name, digest)
    if config.architecture is None:
        raise ModelLoadError(
            f"model file '{p.name}' holds weights only; name the network in the model config "
            "key 'architecture' (built-in: ecgresnet, resnet1d) or give a TorchScript/ONNX file"
        )
    module = build_architecture(
        config.architecture, len(config.leads), len(config.classes), config.architecture_params
    )
    weights = _read_weights(p, fmt)
    check_finite(weights.items(), p.name)
    check_state_dict(module, weights, p.name)
    return LoadedModel(config, fmt, module.to(dev).eval(), dev, p.name, digest)


def _load_onnx(p: Path, config: ModelConfig, dev: str, digest: str,
               threads: int | None) -> LoadedModel:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelLoadError(
            "ONNX models need onnxruntime; install it with: pip install 'ecgaudit[onnx]'"
        ) from None
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if dev.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise InputError("this onnxruntime build has no CUDA support; use --device cpu")
        providers.insert(0, "CUDAExecutionProvider")
    try:
        session = ort.InferenceSession(str(p), sess_options=opts, providers=providers)
    except Exception as err:
        raise ModelLoadError(f"ONNX file '{p.name}' cannot be loaded: {err}") from None
    check_onnx_input(list(session.get_inputs()[0].shape), config, p.name)
    return LoadedModel(config, "onnx", None, dev, p.name, digest, session=session, threads=threads,
                       extra={"onnx_input": json.dumps(session.get_inputs()[0].shape)})
