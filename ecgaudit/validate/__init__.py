"""Validation: collect every problem of the inputs, then raise once."""

from ecgaudit.validate._checks import PreparedData, prepare

__all__ = ["PreparedData", "prepare"]
