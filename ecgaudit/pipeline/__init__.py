"""Pipeline: the only module that crosses stages.

load -> validate -> cohort -> metrics -> disparities -> privacy -> result; and, for site
adaptation, split -> adapt -> score -> audit before/after -> compare -> gate.
"""

from ecgaudit.pipeline._audit import audit, audit_files, audit_model
from ecgaudit.pipeline._finetune import FinetuneOutcome, finetune_and_audit

__all__ = ["FinetuneOutcome", "audit", "audit_files", "audit_model", "finetune_and_audit"]
