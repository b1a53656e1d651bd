"""Run ECG models safely: architectures, model configs, safe loading, preprocessing, inference.

Typical use::

    from ecgaudit.models import predict
    preds = predict("model.safetensors", "model.json", "records/", batch_size=64, threads=2)

Building blocks (also used by fine-tuning)::

    config = load_model_config("model.json")        # ModelConfig (pydantic)
    net = build_model(config)                         # registered architecture, eval mode
    model = load_model("model.safetensors", config)   # LoadedModel; model.module is the net
    windows = preprocess(record, config)              # (n_windows, leads, samples) float32

Post-processing: a config's optional ``postprocess`` section (written by ``ecgaudit
finetune``) declares per-class recalibration maps (Platt, temperature, isotonic) that
inference applies to the record scores; :func:`recalibration_map` is the one implementation
of those maps. Group thresholds there are recorded in the manifest but never applied.

Torch-dependent names are imported on first use, so ``import ecgaudit.models`` works (and
config files can be validated) without PyTorch; using them without it raises
:class:`~ecgaudit.errors.InputError` saying how to install it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ecgaudit.errors import InputError
from ecgaudit.models._config import (
    BandpassConfig,
    IsotonicMap,
    ModelConfig,
    PlattMap,
    PostprocessConfig,
    PreprocessingConfig,
    RecalibrationMap,
    TemperatureMap,
    WindowConfig,
    load_model_config,
    parse_model_config,
)

if TYPE_CHECKING:
    from ecgaudit.models._architectures import (
        ARCHITECTURES,
        ECGResNet,
        ResNet1D,
        build_architecture,
    )
    from ecgaudit.models._inference import (
        MANIFEST_ATTR,
        Predictions,
        predict,
        predict_detailed,
        run_inference,
    )
    from ecgaudit.models._loading import PICKLE_REFUSED, LoadedModel, detect_format, load_model
    from ecgaudit.models._postprocess import (
        EPS,
        GROUP_THRESHOLDS_NOTE,
        RECALIBRATION_METHODS,
        apply_postprocess,
        clipped_logit,
        postprocess_manifest,
        recalibration_map,
    )
    from ecgaudit.models._preprocess import Preprocessor, preprocess

__all__ = [
    "ARCHITECTURES",
    "EPS",
    "GROUP_THRESHOLDS_NOTE",
    "MANIFEST_ATTR",
    "PICKLE_REFUSED",
    "RECALIBRATION_METHODS",
    "BandpassConfig",
    "ECGResNet",
    "IsotonicMap",
    "LoadedModel",
    "ModelConfig",
    "PlattMap",
    "PostprocessConfig",
    "Predictions",
    "PreprocessingConfig",
    "Preprocessor",
    "RecalibrationMap",
    "ResNet1D",
    "TemperatureMap",
    "WindowConfig",
    "apply_postprocess",
    "build_architecture",
    "build_model",
    "clipped_logit",
    "detect_format",
    "load_model",
    "load_model_config",
    "parse_model_config",
    "postprocess_manifest",
    "predict",
    "predict_detailed",
    "preprocess",
    "recalibration_map",
    "run_inference",
]

_LAZY = {
    "ARCHITECTURES": "_architectures",
    "ECGResNet": "_architectures",
    "ResNet1D": "_architectures",
    "build_architecture": "_architectures",
    "MANIFEST_ATTR": "_inference",
    "Predictions": "_inference",
    "predict": "_inference",
    "predict_detailed": "_inference",
    "run_inference": "_inference",
    "PICKLE_REFUSED": "_loading",
    "LoadedModel": "_loading",
    "detect_format": "_loading",
    "load_model": "_loading",
    "Preprocessor": "_preprocess",
    "preprocess": "_preprocess",
    "EPS": "_postprocess",
    "GROUP_THRESHOLDS_NOTE": "_postprocess",
    "RECALIBRATION_METHODS": "_postprocess",
    "apply_postprocess": "_postprocess",
    "clipped_logit": "_postprocess",
    "postprocess_manifest": "_postprocess",
    "recalibration_map": "_postprocess",
}

TORCH_HINT = "model inference needs PyTorch: pip install 'ecgaudit[torch]'"


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'ecgaudit.models' has no attribute '{name}'")
    try:
        module = importlib.import_module(f"ecgaudit.models.{_LAZY[name]}")
    except ImportError as err:
        if err.name in ("torch", "safetensors"):
            raise InputError(f"{TORCH_HINT} (missing package '{err.name}')") from None
        raise
    return getattr(module, name)


def build_model(config: ModelConfig) -> Any:
    """Build the (untrained) network a config names, in evaluation mode.

    Parameters
    ----------
    config : ModelConfig
        Needs ``architecture`` (``ecgresnet`` or ``resnet1d``) and optionally
        ``architecture_params``; input channels = ``len(leads)``, outputs = ``len(classes)``.

    Returns
    -------
    torch.nn.Module
    """
    if config.architecture is None:
        raise InputError("the model config names no 'architecture' to build")
    build = __getattr__("build_architecture")
    return build(config.architecture, len(config.leads), len(config.classes),
                 config.architecture_params)
