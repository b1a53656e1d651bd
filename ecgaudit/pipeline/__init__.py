"""Pipeline: the only module that crosses stages.

load -> validate -> cohort -> metrics -> disparities -> privacy -> result; the audit -> gate
-> report workflow (:func:`run_audit`); the candidate-vs-baseline comparison
(:func:`compare_results`, :func:`compare_predictions`); and, for site adaptation, split ->
adapt -> score -> audit before/after -> compare -> gate. The fine-tuning entry points load
lazily, so ``import ecgaudit`` never imports torch.
"""

from typing import Any

from ecgaudit.pipeline._audit import audit, audit_files, audit_model
from ecgaudit.pipeline._compare import (
    COMPARISON_COLUMNS,
    PAIRED_METRICS,
    Comparison,
    compare_predictions,
    compare_results,
    config_from_result,
    merge_comparisons,
)

__all__ = [
    "COMPARISON_COLUMNS",
    "PAIRED_METRICS",
    "Comparison",
    "FinetuneOutcome",
    "audit",
    "audit_files",
    "audit_model",
    "before_after_gate",
    "compare_predictions",
    "compare_results",
    "config_from_result",
    "default_policy",
    "finetune_and_audit",
    "merge_comparisons",
    "summarize_before_after",
]


def __getattr__(name: str) -> Any:
    if name in ("FinetuneOutcome", "finetune_and_audit"):
        from ecgaudit.pipeline import _finetune

        return getattr(_finetune, name)
    if name in ("before_after_gate", "default_policy", "summarize_before_after"):
        from ecgaudit.pipeline import _finetunegate

        return getattr(_finetunegate, name)
    raise AttributeError(f"module 'ecgaudit.pipeline' has no attribute '{name}'")
