"""Pipeline: the only module that crosses stages.

load -> validate -> cohort -> metrics -> disparities -> privacy -> result.
"""

from ecgaudit.pipeline._audit import audit, audit_files

__all__ = ["audit", "audit_files"]
