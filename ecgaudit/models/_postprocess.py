"""Score post-processing declared in a model config: per-class recalibration maps.

This module holds the one implementation of the recalibration maps. Inference applies them
to the record scores (after the output activation and window aggregation); fine-tuning
(:mod:`ecgaudit.finetune`, a layer above) fits them and calls :func:`recalibration_map` to
transform scores, so a fitted map and an exported model give the same numbers.

Maps (``p`` a probability, ``logit`` taken after clipping ``p`` to ``[EPS, 1 - EPS]``):

* ``platt``: ``sigmoid(a * logit(p) + b)``;
* ``temperature``: ``sigmoid(logit(p) / temperature)``;
* ``isotonic``: linear interpolation between the knots ``(x, y)``, clipped to ``y[0]`` /
  ``y[-1]`` outside ``[x[0], x[-1]]`` (scikit-learn's ``out_of_bounds="clip"``).

Group-specific thresholds are never applied here: they need the protected attribute at
decision time. :func:`postprocess_manifest` says so in the inference manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit, logit

from ecgaudit.errors import InputError
from ecgaudit.models._config import ModelConfig

__all__ = [
    "EPS",
    "GROUP_THRESHOLDS_NOTE",
    "POSTPROCESS_OFF_NOTE",
    "RECALIBRATION_METHODS",
    "apply_postprocess",
    "clipped_logit",
    "postprocess_manifest",
    "recalibration_map",
]

#: Scores are clipped to [EPS, 1 - EPS] before taking logits (saturated model outputs).
EPS = 1e-6

RECALIBRATION_METHODS: tuple[str, ...] = ("platt", "temperature", "isotonic")

GROUP_THRESHOLDS_NOTE = (
    "the model config holds group-specific thresholds for {classes} (attribute {attributes}); "
    "they use the protected attribute at decision time and are NOT applied by inference: the "
    "score columns are scores, not decisions. Apply the rule explicitly "
    "(ecgaudit.finetune.GroupThresholds) only if using the protected attribute is acceptable."
)
POSTPROCESS_OFF_NOTE = (
    "post-processing was switched off by the caller: the score columns are the model's raw "
    "scores, without the recalibration the model config declares for {classes}"
)
ERR_NOT_PROBABILITIES = (
    "model '{source}': class '{cls}' has a {method} recalibration map, which maps "
    "probabilities in [0, 1], but its scores run from {lo:g} to {hi:g}; use an "
    "output_activation that gives probabilities (sigmoid/softmax) or remove the map"
)


def clipped_logit(p: ArrayLike) -> NDArray[np.float64]:
    """Return ``logit(clip(p, EPS, 1 - EPS))`` as float64.

    Parameters
    ----------
    p : array_like
        Probabilities.

    Returns
    -------
    numpy.ndarray
    """
    arr = np.asarray(p, dtype=np.float64)
    return np.asarray(logit(np.clip(arr, EPS, 1.0 - EPS)), dtype=np.float64)


def recalibration_map(
    method: str, params: Mapping[str, Any], scores: ArrayLike
) -> NDArray[np.float64]:
    """Apply one recalibration map to probabilities.

    Parameters
    ----------
    method : {"platt", "temperature", "isotonic"}
        The map.
    params : mapping
        ``platt``: ``a``, ``b``; ``temperature``: ``temperature``; ``isotonic``: ``x``, ``y``.
    scores : array_like
        Probabilities in [0, 1] (not checked here).

    Returns
    -------
    numpy.ndarray
        Recalibrated probabilities, float64, same shape as ``scores``.

    Raises
    ------
    InputError
        If the method is unknown.
    """
    p = np.asarray(scores, dtype=np.float64)
    if method == "platt":
        return np.asarray(expit(float(params["a"]) * clipped_logit(p) + float(params["b"])))
    if method == "temperature":
        return np.asarray(expit(clipped_logit(p) / float(params["temperature"])))
    if method == "isotonic":
        x = np.asarray(params["x"], dtype=np.float64)
        y = np.asarray(params["y"], dtype=np.float64)
        return np.asarray(np.interp(p, x, y), dtype=np.float64)
    raise InputError(
        f"unknown recalibration method '{method}'; use one of {RECALIBRATION_METHODS}"
    )


def apply_postprocess(
    scores: NDArray[np.float64], config: ModelConfig, *, source: str = "model"
) -> NDArray[np.float64]:
    """Apply the config's recalibration maps to a ``(records, classes)`` score array.

    Classes without a map, and group thresholds, are left as they are.

    Parameters
    ----------
    scores : numpy.ndarray
        Record scores after the output activation and window aggregation.
    config : ModelConfig
        The model config (its ``postprocess`` section).
    source : str
        Model name used in error messages.

    Returns
    -------
    numpy.ndarray
        A new float64 array (the input when there is nothing to apply).

    Raises
    ------
    InputError
        If a recalibrated class has finite scores outside [0, 1].
    """
    post = config.postprocess
    if post is None or not post.recalibration:
        return scores
    out = np.array(scores, dtype=np.float64, copy=True)
    for cls, rmap in post.recalibration.items():
        j = config.classes.index(cls)
        col = out[:, j]
        finite = col[np.isfinite(col)]
        if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
            raise InputError(ERR_NOT_PROBABILITIES.format(
                source=source, cls=cls, method=rmap.method, lo=finite.min(), hi=finite.max()))
        out[:, j] = recalibration_map(rmap.method, rmap.params.model_dump(), col)
    return out


def postprocess_manifest(config: ModelConfig, *, applied: bool = True) -> dict[str, Any]:
    """Describe what post-processing inference did, for the inference manifest.

    Parameters
    ----------
    config : ModelConfig
        The model config.
    applied : bool
        Whether the caller let inference apply the recalibration maps.

    Returns
    -------
    dict
        ``recalibrated`` (score column -> method, the maps applied), ``not_applied``
        (what the config declares but inference did not apply) and ``notes``.
    """
    post = config.postprocess
    recal = dict(post.recalibration) if post is not None else {}
    thresholds = dict(post.group_thresholds) if post is not None else {}
    notes: list[str] = []
    not_applied: dict[str, Any] = {}
    if recal and not applied:
        notes.append(POSTPROCESS_OFF_NOTE.format(classes=", ".join(sorted(recal))))
        not_applied["recalibration"] = {f"score:{c}": m.method for c, m in recal.items()}
    if thresholds:
        attrs = sorted({str(r.get("attribute")) for r in thresholds.values()})
        notes.append(GROUP_THRESHOLDS_NOTE.format(classes=", ".join(sorted(thresholds)),
                                                  attributes=", ".join(attrs)))
        not_applied["group_thresholds"] = sorted(f"score:{c}" for c in thresholds)
    return {
        "recalibrated": ({f"score:{c}": m.method for c, m in recal.items()} if applied
                         else {}),
        "not_applied": not_applied,
        "notes": notes,
    }
