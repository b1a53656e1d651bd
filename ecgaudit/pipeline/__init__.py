"""Pipeline: the only module that crosses stages.

load -> validate -> cohort -> metrics -> disparities -> privacy -> result.
"""

from ecgaudit.pipeline._audit import audit, audit_files, audit_model

__all__ = ["audit", "audit_files", "audit_model"]
