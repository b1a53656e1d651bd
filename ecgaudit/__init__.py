"""ecgaudit: audit ECG deep-learning models for subgroup performance and fairness.

The public API is deliberately small::

    import ecgaudit
    result = ecgaudit.audit(df, config)      # config: AuditConfig, dict or YAML path
    result.metrics, result.disparities       # tidy pandas DataFrames
    result.save("results/")                  # metrics.csv, disparities.csv, results.json
"""

from ecgaudit.config import (
    AttributeConfig,
    AuditConfig,
    TaskConfig,
    ThresholdConfig,
    load_config,
)
from ecgaudit.errors import (
    ComputationError,
    ConfigError,
    EcgAuditError,
    InputError,
    JoinError,
    ModelLoadError,
    ValidationError,
)
from ecgaudit.pipeline import audit, audit_files
from ecgaudit.result import AuditResult

__version__ = "0.1.0"

__all__ = [
    "AttributeConfig",
    "AuditConfig",
    "AuditResult",
    "ComputationError",
    "ConfigError",
    "EcgAuditError",
    "InputError",
    "JoinError",
    "ModelLoadError",
    "TaskConfig",
    "ThresholdConfig",
    "ValidationError",
    "__version__",
    "audit",
    "audit_files",
    "load_config",
]
