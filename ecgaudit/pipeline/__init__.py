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
    "AuditOutcome",
    "Comparison",
    "FinetuneOutcome",
    "ModelInputs",
    "RowsElsewhere",
    "audit",
    "audit_files",
    "audit_model",
    "before_after_gate",
    "compare_files",
    "compare_predictions",
    "compare_results",
    "config_from_result",
    "default_policy",
    "finetune_and_audit",
    "judge",
    "merge_comparisons",
    "read_gate",
    "render_saved_report",
    "run_audit",
    "run_gate",
    "summarize_before_after",
    "write_gate",
]


#: Loaded on first use: the workflow imports the report renderer, fine-tuning imports torch.
_LAZY = {
    "FinetuneOutcome": "_finetune",
    "finetune_and_audit": "_finetune",
    "before_after_gate": "_finetunegate",
    "default_policy": "_finetunegate",
    "summarize_before_after": "_finetunegate",
    "AuditOutcome": "_workflow",
    "compare_files": "_workflow",
    "ModelInputs": "_workflow",
    "RowsElsewhere": "_workflow",
    "judge": "_workflow",
    "read_gate": "_workflow",
    "render_saved_report": "_workflow",
    "run_audit": "_workflow",
    "run_gate": "_workflow",
    "write_gate": "_workflow",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"ecgaudit.pipeline.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ecgaudit.pipeline' has no attribute '{name}'")
