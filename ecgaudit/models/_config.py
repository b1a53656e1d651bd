"""The model config: what a model expects as input and how its outputs are read.

A model file (weights) is always accompanied by a JSON config, e.g.::

    {
      "name": "ecgresnet-ptbxl",
      "architecture": "ecgresnet",
      "fs": 100,
      "leads": ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"],
      "units": null,
      "classes": ["NORM", "MI", "STTC", "CD", "HYP"],
      "output_activation": "sigmoid",
      "preprocessing": {"zscore": true},
      "window": {"length": 300, "stride": 150, "aggregate": "max"},
      "postprocess": {"recalibration": {"NORM": {"method": "platt",
                                                 "params": {"a": 0.8, "b": -0.1}}}}
    }

Every preprocessing step is explicit: a sampling-rate or unit mismatch is an error unless
``preprocessing.resample`` / ``preprocessing.convert_units`` allow the conversion. The optional
``postprocess`` section (written by ``ecgaudit finetune``) declares per-class recalibration
maps that inference applies to the record scores; group thresholds stored there are recorded
but never applied (they need the protected attribute at decision time).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ecgaudit.errors import ConfigError

__all__ = [
    "BandpassConfig",
    "IsotonicMap",
    "ModelConfig",
    "PlattMap",
    "PostprocessConfig",
    "PreprocessingConfig",
    "RecalibrationMap",
    "TemperatureMap",
    "WindowConfig",
    "load_model_config",
    "parse_model_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BandpassConfig(_Strict):
    """Zero-phase Butterworth band-pass (``sosfiltfilt``); ``low=None`` gives a low-pass.

    A high-pass with ``low`` around 0.5 Hz removes baseline wander.
    """

    low: float | None = Field(default=0.5, gt=0.0)
    high: float | None = Field(default=40.0, gt=0.0)
    order: int = Field(default=2, ge=1, le=8)

    @model_validator(mode="after")
    def _some_band(self) -> BandpassConfig:
        if self.low is None and self.high is None:
            raise ValueError("band-pass needs 'low', 'high' or both")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"band-pass 'low' ({self.low}) must be below 'high' ({self.high})")
        return self


class PreprocessingConfig(_Strict):
    """Explicit preprocessing steps, applied in this order.

    ``reorder_leads`` (select and order the model's leads by name, ``AVR`` = ``aVR``),
    ``convert_units`` (V/mV/uV to the model's unit), ``resample`` (``resample_poly`` to the
    model's rate), ``bandpass``, ``zscore`` (per record and lead).
    """

    reorder_leads: bool = True
    convert_units: bool = False
    resample: bool = False
    bandpass: BandpassConfig | None = None
    zscore: bool = False


class WindowConfig(_Strict):
    """Cut each record into windows of ``length`` samples every ``stride`` samples.

    The model scores each window; scores (after the output activation) are combined per
    record with ``aggregate``. Records shorter than ``length`` are an error.
    """

    length: int = Field(gt=0)
    stride: int | None = Field(default=None, gt=0)
    aggregate: Literal["max", "mean"] = "max"


class _Finite(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PlattParams(_Finite):
    """``p' = sigmoid(a * logit(p) + b)``."""

    a: float
    b: float


class TemperatureParams(_Finite):
    """``p' = sigmoid(logit(p) / temperature)``."""

    temperature: float = Field(gt=0.0)


class IsotonicParams(_Finite):
    """Knots of a non-decreasing map, linearly interpolated and clipped at the ends.

    This is how scikit-learn's ``IsotonicRegression(out_of_bounds="clip")`` predicts from its
    ``X_thresholds_`` / ``y_thresholds_``.
    """

    x: tuple[float, ...] = Field(min_length=1)
    y: tuple[float, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _knots(self) -> IsotonicParams:
        if len(self.x) != len(self.y):
            raise ValueError(f"x ({len(self.x)}) and y ({len(self.y)}) need the same length")
        if any(b < a for a, b in zip(self.x, self.x[1:], strict=False)):
            raise ValueError("x must be sorted in increasing order")
        if any(b < a for a, b in zip(self.y, self.y[1:], strict=False)):
            raise ValueError("y must be non-decreasing (an isotonic map)")
        if min(self.y) < 0.0 or max(self.y) > 1.0:
            raise ValueError("y must be probabilities in [0, 1]")
        return self


class _MapBase(_Finite):
    n: int = Field(default=0, ge=0)
    n_pos: int = Field(default=0, ge=0)


class PlattMap(_MapBase):
    """Platt scaling of one class's score (``n``/``n_pos``: site rows it was fitted on)."""

    method: Literal["platt"]
    params: PlattParams


class TemperatureMap(_MapBase):
    """Temperature scaling of one class's score."""

    method: Literal["temperature"]
    params: TemperatureParams


class IsotonicMap(_MapBase):
    """Isotonic recalibration of one class's score."""

    method: Literal["isotonic"]
    params: IsotonicParams


RecalibrationMap = Annotated[PlattMap | TemperatureMap | IsotonicMap,
                             Field(discriminator="method")]


class PostprocessConfig(_Strict):
    """Score post-processing shipped with a model (``ecgaudit finetune`` writes it).

    ``recalibration`` maps a class name to its recalibration map; inference applies it to the
    record score (after the output activation and window aggregation). ``group_thresholds``
    (class name -> a fitted group-threshold rule) is kept for provenance and is **never
    applied** by inference: the rule needs the protected attribute at decision time.
    """

    recalibration: dict[str, RecalibrationMap] = Field(default_factory=dict)
    group_thresholds: dict[str, dict[str, Any]] = Field(default_factory=dict)


class ModelConfig(_Strict):
    """Declared input contract and output meaning of one model."""

    name: str = "model"
    architecture: str | None = None
    architecture_params: dict[str, Any] = Field(default_factory=dict)
    fs: float = Field(gt=0)
    leads: tuple[str, ...] = Field(min_length=1)
    units: str | None = None
    classes: tuple[str, ...] = Field(min_length=1)
    output_activation: Literal["sigmoid", "softmax", "none"] = "sigmoid"
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    window: WindowConfig | None = None
    input_samples: int | None = Field(default=None, gt=0)
    id_column: str = "ecg_id"
    postprocess: PostprocessConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        for what, items in (("leads", self.leads), ("classes", self.classes)):
            dup = sorted({x for x in items if items.count(x) > 1})
            if dup:
                raise ValueError(f"{what} must be unique; repeated: {dup}")
        if self.postprocess is not None:
            for what, maps in (("recalibration", self.postprocess.recalibration),
                               ("group_thresholds", self.postprocess.group_thresholds)):
                unknown = sorted(set(maps) - set(self.classes))
                if unknown:
                    raise ValueError(f"postprocess.{what} names {unknown}, which are not "
                                     f"classes of the model {list(self.classes)}")
        if self.window is not None and self.input_samples not in (None, self.window.length):
            raise ValueError("input_samples must equal window.length when a window is set")
        return self

    @property
    def score_columns(self) -> list[str]:
        """Output column names, ``score:<CLASS>``."""
        return [f"score:{c}" for c in self.classes]

    def to_dict(self) -> dict[str, Any]:
        """Return the config as JSON-serialisable data (for the manifest).

        A config without post-processing has no ``postprocess`` key, as its file has none.
        """
        data = self.model_dump(mode="json")
        if self.postprocess is None:
            data.pop("postprocess")
        return data


def parse_model_config(data: Any, source: str = "model config") -> ModelConfig:
    """Validate a model config given as plain data.

    Parameters
    ----------
    data : mapping
        Parsed JSON.
    source : str
        Name used in error messages.

    Returns
    -------
    ModelConfig

    Raises
    ------
    ConfigError
        Listing every invalid or unknown key.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the model config must be a JSON object")
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            lines.append(f"  - {loc}: {msg}")
        raise ConfigError(f"{source}: invalid model config:\n" + "\n".join(lines)) from None


def load_model_config(path: str | Path) -> ModelConfig:
    """Read and validate a model config JSON file.

    Parameters
    ----------
    path : str or Path
        The JSON file.

    Returns
    -------
    ModelConfig

    Raises
    ------
    ConfigError
        If the file is missing, not JSON or invalid.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read model config '{p.name}': {err.strerror}") from None
    except ValueError as err:
        raise ConfigError(f"model config '{p.name}' is not valid JSON: {err}") from None
    return parse_model_config(data, source=p.name)
