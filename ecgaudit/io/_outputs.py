"""Check output paths before any work: a bad ``--out`` is an input error, not a crash."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ecgaudit.errors import InputError

__all__ = ["check_output_dir", "check_output_file"]


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_writable(path: Path, option: str) -> None:
    base = _nearest_existing(path.absolute().parent if not path.is_dir() else path.absolute())
    if not base.is_dir():
        raise InputError(f"{option} '{path}': '{base.name}' is a file, not a folder; "
                         f"choose another {option}")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"{option} '{path}': folder '{base}' is not writable; choose a "
                         f"folder you can write to with {option}")


def _check_not_input(path: Path, inputs: Iterable[str | Path | None], option: str) -> None:
    for inp in inputs:
        if inp is not None and _same_file(path, Path(inp)):
            raise InputError(f"{option} '{path}' is one of the input files; choose another "
                             f"{option} so the input is not overwritten")


def check_output_dir(path: str | Path, inputs: Iterable[str | Path | None] = (),
                     option: str = "--out") -> None:
    """Refuse an output folder that is a file, an input, or not writable.

    Parameters
    ----------
    path : str or Path
        The output folder (it may not exist yet).
    inputs : iterable of path
        Input files of the run (``None`` entries are ignored).
    option : str
        The option's name, for messages.

    Raises
    ------
    InputError
        Naming the path and saying what to do.
    """
    p = Path(path)
    _check_not_input(p, inputs, option)
    if p.exists() and not p.is_dir():
        raise InputError(f"{option} '{p}' is an existing file, but {option} names an output "
                         f"folder; give a folder path (e.g. {option} results/)")
    _check_writable(p, option)


def check_output_file(path: str | Path, inputs: Iterable[str | Path | None] = (),
                      option: str = "--out") -> None:
    """Refuse an output file path that is a folder, an input, or not writable.

    Parameters
    ----------
    path : str or Path
        The output file.
    inputs : iterable of path
        Input files of the run.
    option : str
        The option's name, for messages.

    Raises
    ------
    InputError
        Naming the path and saying what to do.
    """
    p = Path(path)
    _check_not_input(p, inputs, option)
    if p.is_dir():
        raise InputError(f"{option} '{p}' is a folder, but {option} names a file; give a "
                         f"file path (e.g. {option} {p / 'out'}{_suffix(option)})")
    _check_writable(p, option)


def _suffix(option: str) -> str:
    return ".xml" if "junit" in option else ""
