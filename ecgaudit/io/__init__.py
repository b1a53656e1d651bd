"""Input and output: read tables safely, hash inputs, write outputs atomically."""

from ecgaudit.io._atomic import atomic_write_bytes, atomic_write_text
from ecgaudit.io._csv import frame_to_csv, neutralise_frame
from ecgaudit.io._outputs import check_output_dir, check_output_file
from ecgaudit.io._outset import OUTPUT_SET_NAMES, output_lock, write_output_set
from ecgaudit.io._paths import ALLOW_EXTERNAL_ENV, contained_path
from ecgaudit.io._tables import InputTable, file_sha256, read_table

__all__ = [
    "ALLOW_EXTERNAL_ENV",
    "OUTPUT_SET_NAMES",
    "InputTable",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_dir",
    "check_output_file",
    "contained_path",
    "file_sha256",
    "frame_to_csv",
    "neutralise_frame",
    "output_lock",
    "read_table",
    "write_output_set",
]
