"""Input and output: read tables safely, hash inputs, write outputs atomically."""

from ecgaudit.io._atomic import atomic_write_bytes, atomic_write_text
from ecgaudit.io._tables import InputTable, file_sha256, read_table

__all__ = [
    "InputTable",
    "atomic_write_bytes",
    "atomic_write_text",
    "file_sha256",
    "read_table",
]
