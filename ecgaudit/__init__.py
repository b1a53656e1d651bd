"""ecgaudit: audit ECG deep-learning models for subgroup performance and fairness.

The public API is deliberately small::

    import ecgaudit
    result = ecgaudit.audit(df, config)      # config: AuditConfig, dict or YAML path
    result.metrics, result.disparities       # tidy pandas DataFrames
    result.save("results/")                  # metrics.csv, disparities.csv, results.json
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ecgaudit.errors import (
    ComputationError,
    ConfigError,
    EcgAuditError,
    InputError,
    JoinError,
    ModelLoadError,
    ValidationError,
)

if TYPE_CHECKING:
    from ecgaudit.config import (
        AttributeConfig,
        AuditConfig,
        TaskConfig,
        ThresholdConfig,
        load_config,
    )
    from ecgaudit.pipeline import audit, audit_files
    from ecgaudit.result import AuditResult

#: Names imported on first use (PEP 562), so that ``import ecgaudit`` and the command
#: line's ``--help`` do not pay for pandas, scipy and numba.
_LAZY: dict[str, str] = {
    "AttributeConfig": "ecgaudit.config",
    "AuditConfig": "ecgaudit.config",
    "TaskConfig": "ecgaudit.config",
    "ThresholdConfig": "ecgaudit.config",
    "load_config": "ecgaudit.config",
    "audit": "ecgaudit.pipeline",
    "audit_files": "ecgaudit.pipeline",
    "AuditResult": "ecgaudit.result",
}


def __getattr__(name: str) -> Any:
    """Import the public API lazily on first attribute access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ecgaudit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
