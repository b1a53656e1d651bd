"""Export an adapted model: safetensors weights, JSON config, post-processing and manifest.

The manifest is the change log of what was done to the parent model: its SHA-256, the
hashes of the site data, the split seed and sizes, the strategy and hyper-parameters, the
training history and the library versions. It holds no timestamps, so the same inputs and
seed give byte-identical files.

Post-processing (recalibration maps, group thresholds) is written twice: into the
``postprocess`` section of ``model.json``, where :mod:`ecgaudit.models` inference applies
the recalibration maps (so ``ecgaudit predict`` on the exported model gives the adapted
scores), and into ``postprocess.json`` for readers of the older layout.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from ecgaudit.finetune._checkpoint import state_bytes
from ecgaudit.io import atomic_write_bytes, atomic_write_text
from ecgaudit.models import parse_model_config
from ecgaudit.result import to_jsonable

__all__ = ["EXPORT_FILES", "export_site_model", "library_versions", "split_digest"]

EXPORT_FILES = {
    "weights": "model.safetensors",
    "config": "model.json",
    "postprocess": "postprocess.json",
    "manifest": "manifest.json",
}

_PACKAGES = ("ecgaudit", "torch", "safetensors", "numpy", "pandas", "scipy", "scikit-learn",
             "fairlearn")


def library_versions() -> dict[str, str | None]:
    """Return the Python version and the versions of the packages fine-tuning used."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def split_digest(ids: list[str]) -> str:
    """Return a SHA-256 of a split's sorted record ids (proves which rows were used)."""
    text = "\n".join(sorted(ids))
    return hashlib.sha256(text.encode()).hexdigest()


def _dumps(data: Any) -> str:
    return json.dumps(to_jsonable(data), sort_keys=True, indent=1, allow_nan=False) + "\n"


def export_site_model(
    out_dir: str | Path,
    *,
    state_dict: dict[str, torch.Tensor],
    model_config: dict[str, Any],
    manifest: dict[str, Any],
    postprocess: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the adapted model folder atomically.

    Parameters
    ----------
    out_dir : str or Path
        Destination folder (created if needed).
    state_dict : dict of str to Tensor
        The adapted weights (the parent's, unchanged, for ``recalibrate``/``thresholds``).
    model_config : dict
        The model config (architecture, signal contract) to ship with the weights.
    manifest : dict
        Provenance; ``weights_sha256`` is added.
    postprocess : dict, optional
        Score post-processing (``recalibration`` maps, ``group_thresholds``). It becomes the
        ``postprocess`` section of ``model.json`` (replacing any there) and is also written
        to ``postprocess.json``.

    Returns
    -------
    dict of str to Path
        Files written, by role.

    Raises
    ------
    ConfigError
        If the model config with the post-processing section is not a valid model config
        (checked before anything is written).
    """
    out = Path(out_dir)
    config = dict(model_config)
    if postprocess:
        config["postprocess"] = dict(postprocess)
    config_text = _dumps(config)
    parse_model_config(json.loads(config_text), source="exported model config")
    blob = state_bytes(state_dict)
    paths = {"weights": atomic_write_bytes(out / EXPORT_FILES["weights"], blob),
             "config": atomic_write_text(out / EXPORT_FILES["config"], config_text)}
    if postprocess:
        paths["postprocess"] = atomic_write_text(out / EXPORT_FILES["postprocess"],
                                                 _dumps(postprocess))
    full = {**manifest, "weights_sha256": hashlib.sha256(blob).hexdigest(),
            "files": sorted(EXPORT_FILES[k] for k in paths)}
    paths["manifest"] = atomic_write_text(out / EXPORT_FILES["manifest"], _dumps(full))
    return paths
