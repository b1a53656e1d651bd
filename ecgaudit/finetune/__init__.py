"""Fine-tuning for a target site: data discipline, strategies, export.

Strategies: ``recalibrate`` (Platt / temperature / isotonic; works on scores alone),
``head`` (retrain the final layer), ``full`` (all layers, low learning rate, early stopping,
optional freezing, group-balanced sampling or group DRO) and ``thresholds`` (group-specific
operating thresholds via fairlearn, a post-processing mitigation that uses the protected
attribute at decision time), ``federated`` (FedAvg / FedProx across sites,
:mod:`ecgaudit.finetune._federated`) and ``adapt`` (DANN / Deep CORAL to an unlabelled
target, :mod:`ecgaudit.finetune._adapt`, needs skada). The before/after audit lives in
:mod:`ecgaudit.pipeline`.
"""

from ecgaudit.finetune._checkpoint import CHECKPOINT_FILES, state_sha256
from ecgaudit.finetune._config import (
    FinetuneConfig,
    GateConfig,
    RecalibrationConfig,
    SplitConfig,
    ThresholdsConfig,
    TrainingConfig,
    load_finetune_config,
    parse_finetune_config,
)
from ecgaudit.finetune._export import (
    EXPORT_FILES,
    export_site_model,
    library_versions,
    split_digest,
)
from ecgaudit.finetune._recalibrate import (
    METHODS,
    Recalibrator,
    apply_recalibration,
    recalibrate,
)
from ecgaudit.finetune._split import (
    SPLITS,
    PatientSplit,
    attribute_groups,
    check_no_overlap,
    check_positives,
    combined_groups,
    split_patients,
)
from ecgaudit.finetune._thresholds import (
    PROTECTED_ATTRIBUTE_WARNING,
    GroupThresholds,
    fit_group_thresholds,
    threshold_cost,
)
from ecgaudit.finetune._train import (
    TrainingDivergedError,
    TrainResult,
    deterministic,
    find_head,
    predict_records,
    train_model,
)

__all__ = [
    "CHECKPOINT_FILES",
    "EXPORT_FILES",
    "METHODS",
    "PROTECTED_ATTRIBUTE_WARNING",
    "SPLITS",
    "FinetuneConfig",
    "GateConfig",
    "GroupThresholds",
    "PatientSplit",
    "RecalibrationConfig",
    "Recalibrator",
    "SplitConfig",
    "ThresholdsConfig",
    "TrainResult",
    "TrainingConfig",
    "TrainingDivergedError",
    "apply_recalibration",
    "attribute_groups",
    "check_no_overlap",
    "check_positives",
    "combined_groups",
    "deterministic",
    "export_site_model",
    "find_head",
    "fit_group_thresholds",
    "library_versions",
    "load_finetune_config",
    "parse_finetune_config",
    "predict_records",
    "recalibrate",
    "split_digest",
    "split_patients",
    "state_sha256",
    "threshold_cost",
    "train_model",
]
