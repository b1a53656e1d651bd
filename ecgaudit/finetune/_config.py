"""The fine-tuning configuration (``finetune.yaml``), validated with pydantic.

Example::

    strategy: full              # recalibrate | head | full | thresholds
    tasks: [NORM, MI, STTC, CD, HYP]
    labels: {HYP: label_HYP}    # default label column: label_<task>
    id_column: ecg_id
    patient_column: patient_id
    attributes:                 # audited groups (same keys as the audit config)
      age: {kind: age}
      sex: {}
    split: {train: 0.5, val: 0.15, test: 0.35, seed: 0, stratify: [sex]}
    training: {epochs: 10, lr: 1.0e-4, patience: 3, monitor: val_loss}
    gate: {max_worsening: 0.05, judge: ci}

Only ``tasks`` is required.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ecgaudit.config import AttributeConfig, read_yaml, validate_mapping
from ecgaudit.finetune._fedconfig import AdaptConfig, FederatedConfig

__all__ = [
    "FinetuneConfig",
    "GateConfig",
    "MinPositives",
    "RecalibrationConfig",
    "SplitConfig",
    "ThresholdsConfig",
    "TrainingConfig",
    "load_finetune_config",
    "parse_finetune_config",
]

Strategy = Literal["recalibrate", "head", "full", "thresholds", "federated", "adapt"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SplitConfig(_Strict):
    """Patient-level train / validation / test fractions and the split seed.

    ``stratify`` lists attribute names (keys of ``attributes``) used, with the task labels,
    as strata where each stratum is large enough.
    """

    train: float = Field(default=0.5, gt=0.0, lt=1.0)
    val: float = Field(default=0.15, ge=0.0, lt=1.0)
    test: float = Field(default=0.35, gt=0.0, lt=1.0)
    seed: int = 0
    stratify: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split fractions train+val+test must sum to 1 (got {total:g})")
        return self


class MinPositives(_Strict):
    """Minimum positives (and negatives) per task required before any training starts."""

    train: int = Field(default=10, ge=1)
    val: int = Field(default=3, ge=0)
    test: int = Field(default=1, ge=1)


class RecalibrationConfig(_Strict):
    """Recalibration method for the ``recalibrate`` strategy."""

    method: Literal["platt", "temperature", "isotonic"] = "platt"


class TrainingConfig(_Strict):
    """Hyper-parameters of the ``head`` and ``full`` strategies.

    ``freeze`` lists parameter-name prefixes (e.g. ``stem``, ``blocks.0``) kept fixed in
    ``full``; ``sampling: group_balanced`` draws each group equally often; ``group_dro``
    minimises the worst-group loss (online group DRO, step size ``dro_eta``) over
    ``group_attributes`` (default: all configured attributes).
    ``max_batches_per_epoch`` caps an epoch (tests, smoke runs).
    """

    epochs: int = Field(default=10, ge=1, le=1000)
    lr: float = Field(default=1e-4, gt=0.0, le=1.0)
    head_lr: float | None = Field(default=None, gt=0.0, le=1.0)
    batch_size: int = Field(default=32, ge=2, le=4096)
    weight_decay: float = Field(default=0.0, ge=0.0)
    patience: int = Field(default=3, ge=1)
    monitor: Literal["val_loss", "val_auroc"] = "val_loss"
    freeze: tuple[str, ...] = ()
    head: str | None = None
    sampling: Literal["uniform", "group_balanced"] = "uniform"
    group_dro: bool = False
    dro_eta: float = Field(default=0.01, gt=0.0, le=10.0)
    group_attributes: tuple[str, ...] | None = None
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "cpu"
    num_threads: int | None = Field(default=None, ge=1)
    max_batches_per_epoch: int | None = Field(default=None, ge=1)


class ThresholdsConfig(_Strict):
    """Group-specific thresholds (fairlearn ``ThresholdOptimizer``) for ``thresholds``."""

    attribute: str | None = None
    constraint: Literal[
        "true_positive_rate_parity",
        "false_positive_rate_parity",
        "equalized_odds",
        "demographic_parity",
    ] = "true_positive_rate_parity"
    objective: Literal["balanced_accuracy_score", "accuracy_score"] = "balanced_accuracy_score"
    grid_size: int = Field(default=1000, ge=10, le=100_000)


class GateConfig(_Strict):
    """The default "no group worse" rule applied to before -> after.

    Becomes the policy rule ``{metric, max_worsening, judge, attributes}`` judged on the
    paired before/after comparison (see ``ecgaudit.policy``): with ``judge: ci`` a group
    passes when the whole CI of its change is above ``-max_worsening``, fails when the whole
    CI is below, and is inconclusive otherwise. ``metric: null`` picks ``auroc``, or
    ``sensitivity`` for the ``thresholds`` strategy. A ``--policy`` file replaces this rule.
    """

    metric: str | None = None
    max_worsening: float = Field(default=0.05, ge=0.0, le=1.0)
    judge: Literal["point", "ci", "ci_low", "ci_high"] = "ci"
    attributes: tuple[str, ...] | None = None
    on_inconclusive: Literal["fail", "warn"] = "warn"
    n_boot: int = Field(default=500, ge=100, le=100_000)


class FinetuneConfig(_Strict):
    """Everything one ``ecgaudit finetune`` run needs besides its input files."""

    strategy: Strategy = "full"
    tasks: tuple[str, ...] = Field(min_length=1)
    labels: dict[str, str] = Field(default_factory=dict)
    id_column: str = "ecg_id"
    patient_column: str = "patient_id"
    attributes: dict[str, AttributeConfig] = Field(default_factory=dict)
    split: SplitConfig = Field(default_factory=SplitConfig)
    min_positives: MinPositives = Field(default_factory=MinPositives)
    recalibration: RecalibrationConfig = Field(default_factory=RecalibrationConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    audit: dict[str, Any] = Field(default_factory=dict)
    # --- federated / adapt strategies (see _fedconfig.py; checked in _check_fed_adapt) ---
    federated: FederatedConfig | None = None
    adapt: AdaptConfig | None = None

    @model_validator(mode="after")
    def _check_fed_adapt(self) -> FinetuneConfig:
        if self.strategy == "federated" and self.federated is None:
            object.__setattr__(self, "federated", FederatedConfig())
        if self.strategy == "adapt" and self.adapt is None:
            raise ValueError("strategy 'adapt' needs an 'adapt' section with at least "
                             "'target' (the value of adapt.domain_column naming the target)")
        if self.strategy in ("federated", "adapt") and self.split.val == 0.0:
            raise ValueError(f"strategy '{self.strategy}' needs a validation split "
                             "(split.val > 0)")
        return self

    @model_validator(mode="after")
    def _resolve(self) -> FinetuneConfig:
        dup = sorted({t for t in self.tasks if self.tasks.count(t) > 1})
        if dup:
            raise ValueError(f"tasks must be unique; repeated: {dup}")
        unknown = sorted(set(self.labels) - set(self.tasks))
        if unknown:
            raise ValueError(f"labels given for tasks not in 'tasks': {unknown}")
        labels = {t: self.labels.get(t, f"label_{t}") for t in self.tasks}
        object.__setattr__(self, "labels", labels)
        attrs = {}
        for name, attr in self.attributes.items():
            update: dict[str, Any] = {}
            if attr.column is None:
                update["column"] = name
            attrs[name] = attr.model_copy(update=update) if update else attr
        object.__setattr__(self, "attributes", attrs)
        names = sorted(attrs)
        for where, listed in (
            ("split.stratify", self.split.stratify),
            ("training.group_attributes", self.training.group_attributes or ()),
            ("gate.attributes", self.gate.attributes or ()),
        ):
            bad = [a for a in listed if a not in attrs]
            if bad:
                raise ValueError(f"{where} names unknown attributes {bad}; configured: {names}")
        if self.thresholds.attribute is not None and self.thresholds.attribute not in attrs:
            raise ValueError(
                f"thresholds.attribute '{self.thresholds.attribute}' is not a configured "
                f"attribute; configured: {names}"
            )
        if self.strategy == "thresholds" and not attrs:
            raise ValueError("strategy 'thresholds' needs at least one attribute")
        rule = (self.audit.get("threshold") or {}).get("rule", "fixed")
        if self.strategy == "thresholds" and rule != "fixed":
            raise ValueError(
                "strategy 'thresholds' replaces the operating threshold; use a fixed "
                f"audit.threshold (found rule '{rule}')"
            )
        if self.strategy in ("head", "full") and self.split.val == 0.0:
            raise ValueError(f"strategy '{self.strategy}' needs a validation split (split.val > 0)")
        for key in ("tasks", "attributes", "id_column", "patient_column"):
            if key in self.audit:
                raise ValueError(
                    f"audit.{key} is set from the fine-tuning config; remove it from 'audit'"
                )
        return self

    @property
    def gate_metric(self) -> str:
        """The metric the default gate judges (``auroc``; ``sensitivity`` for thresholds)."""
        if self.gate.metric is not None:
            return self.gate.metric
        return "sensitivity" if self.strategy == "thresholds" else "auroc"

    @property
    def threshold_attribute(self) -> str | None:
        """The attribute used by the ``thresholds`` strategy (default: the first one)."""
        if self.thresholds.attribute is not None:
            return self.thresholds.attribute
        return next(iter(self.attributes), None)

    def to_dict(self) -> dict[str, Any]:
        """Return the resolved config as plain JSON data."""
        data = self.model_dump(mode="json")
        for key in ("federated", "adapt"):  # only present for those strategies
            if data.get(key) is None:
                data.pop(key, None)
        return data


def parse_finetune_config(data: Any, source: str = "finetune config") -> FinetuneConfig:
    """Validate a fine-tuning config given as plain data.

    Parameters
    ----------
    data : mapping
        Parsed YAML content.
    source : str
        Name used in error messages.

    Returns
    -------
    FinetuneConfig

    Raises
    ------
    ConfigError
        If the content is not a valid config; every problem is listed.
    """
    return validate_mapping(FinetuneConfig, data, source, "finetune config")


def load_finetune_config(path: str | Path) -> FinetuneConfig:
    """Read and validate a YAML fine-tuning config.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    FinetuneConfig

    Raises
    ------
    ConfigError
        If the file is missing, not YAML, or not valid.
    """
    p = Path(path)
    data = read_yaml(p, "finetune config")
    return parse_finetune_config(data, source=p.name)
