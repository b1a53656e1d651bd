"""Paths read from files stay inside those files' folders.

A path the user typed on the command line is theirs to choose. A path found *inside* a file
(a waveform sidecar's ``index``, an ``--ecg-spec``'s ``index``) is resolved relative to the
folder of the file it refers to and must stay inside it - ``../x/patients.csv``,
``/etc/shadow`` and symlinks leading out are refused - unless
``ECGAUDIT_ALLOW_EXTERNAL_PATHS=1`` is set explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

from ecgaudit.errors import InputError

__all__ = ["ALLOW_EXTERNAL_ENV", "contained_path"]

#: Environment variable that allows paths in files to point outside their folder.
ALLOW_EXTERNAL_ENV = "ECGAUDIT_ALLOW_EXTERNAL_PATHS"


def _allowed() -> bool:
    return os.environ.get(ALLOW_EXTERNAL_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def contained_path(folder: str | Path, value: object, *, key: str, source: str) -> Path:
    """Resolve ``value`` (a path read from a file) inside ``folder``.

    Parameters
    ----------
    folder : str or Path
        The folder the path is relative to and must stay in.
    value : object
        The path as written in the file.
    key : str
        The key that held it (for messages, e.g. ``index``).
    source : str
        The file that held it (base name, for messages).

    Returns
    -------
    Path
        The resolved path (it may not exist).

    Raises
    ------
    InputError
        If the value is not a string, or resolves outside ``folder``.
    """
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise InputError(f"'{source}', key '{key}': must be a file name (a non-empty string)")
    base = Path(folder).resolve()
    target = (base / value).resolve()
    if _allowed() or target == base or base in target.parents:
        return target
    raise InputError(
        f"'{source}', key '{key}': the path leads outside the folder '{base.name}'; paths "
        f"inside files must name a file in that folder (set {ALLOW_EXTERNAL_ENV}=1 to allow "
        "other locations)"
    )
