"""Pipeline: the only module that crosses stages.

load -> validate -> cohort -> metrics -> disparities -> privacy -> result; and, for site
adaptation, split -> adapt -> score -> audit before/after -> compare -> gate. The fine-tuning
entry points load lazily, so ``import ecgaudit`` never imports torch.
"""

from typing import Any

from ecgaudit.pipeline._audit import audit, audit_files, audit_model

__all__ = ["FinetuneOutcome", "audit", "audit_files", "audit_model", "finetune_and_audit"]


def __getattr__(name: str) -> Any:
    if name in ("FinetuneOutcome", "finetune_and_audit"):
        from ecgaudit.pipeline import _finetune

        return getattr(_finetune, name)
    raise AttributeError(f"module 'ecgaudit.pipeline' has no attribute '{name}'")
