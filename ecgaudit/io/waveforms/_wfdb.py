"""WFDB records: PTB-XL ``.hea/.dat`` and PhysioNet Challenge ``.hea/.mat``."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgaudit.errors import InputError
from ecgaudit.io.waveforms._record import (
    EcgRecord,
    EcgSource,
    canonical_lead,
    canonical_unit,
    check_unique_ids,
    require_optional,
)

__all__ = ["WfdbSource", "parse_header_demographics", "read_wfdb_record"]

_AGE_RE = re.compile(r"^\s*age\s*:\s*(.*)$", re.IGNORECASE)
_SEX_RE = re.compile(r"^\s*sex\s*:\s*(.*)$", re.IGNORECASE)
_SEX_VALUES = {"male": "male", "m": "male", "female": "female", "f": "female"}


def _wfdb() -> Any:
    # wfdb 4.x emits a pandas deprecation warning at import time; it is not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return require_optional("wfdb")


def parse_header_demographics(comments: Sequence[str]) -> dict[str, Any]:
    """Parse ``Age:`` and ``Sex:`` from WFDB header comments (PhysioNet Challenge style).

    Parameters
    ----------
    comments : sequence of str
        Header comment lines without the leading ``#``.

    Returns
    -------
    dict
        ``{"age": float | None, "sex": "male" | "female" | None}``; a key is present only
        if its comment line is. Unparseable or ``NaN``/``Unknown`` values become ``None``.
    """
    out: dict[str, Any] = {}
    for line in comments:
        text = line.lstrip("#").strip()
        if m := _AGE_RE.match(text):
            try:
                age = float(m.group(1).strip())
            except ValueError:
                age = float("nan")
            out["age"] = age if np.isfinite(age) and age >= 0 else None
        elif m := _SEX_RE.match(text):
            out["sex"] = _SEX_VALUES.get(m.group(1).strip().lower())
    return out


def read_wfdb_record(path: str | Path) -> EcgRecord:
    """Read one WFDB record (``.hea`` plus its ``.dat`` or ``.mat`` signal file).

    Parameters
    ----------
    path : str or Path
        The header file, or the record path without suffix.

    Returns
    -------
    EcgRecord
        Physical signal ``(leads, samples)`` as float32; ``record_id`` is the record name.

    Raises
    ------
    InputError
        If the header or signal file is missing, unreadable or truncated, or leads use
        different units.
    """
    wfdb = _wfdb()
    p = Path(path)
    base = p.with_suffix("") if p.suffix == ".hea" else p
    name = base.name
    if not base.with_suffix(".hea").is_file():
        raise InputError(f"WFDB header '{name}.hea' not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = wfdb.rdheader(str(base))
            rec = wfdb.rdrecord(str(base), physical=True, return_res=32)
    except FileNotFoundError as err:
        raise InputError(
            f"WFDB record '{name}': signal file '{Path(str(err.filename or '')).name}' is "
            "missing; keep each .hea next to its .dat/.mat file"
        ) from None
    except (ValueError, OSError, IndexError) as err:
        raise InputError(
            f"WFDB record '{name}': the signal file is truncated or corrupt ({err}); "
            "re-download or re-export the record"
        ) from None
    sig = rec.p_signal
    if sig is None or sig.ndim != 2 or sig.shape[0] != header.sig_len:
        found = 0 if sig is None else sig.shape[0]
        raise InputError(
            f"WFDB record '{name}': the signal file is truncated: header declares "
            f"{header.sig_len} samples, file holds {found}; re-download or re-export the record"
        )
    units = {canonical_unit(u) for u in (rec.units or [])}
    if len(units) > 1:
        raise InputError(
            f"WFDB record '{name}': leads use different units {sorted(map(str, units))}; "
            "convert them to one unit first"
        )
    raw = tuple(str(s) for s in rec.sig_name)
    leads = tuple(canonical_lead(s) for s in raw)
    return EcgRecord(
        record_id=name,
        signal=np.ascontiguousarray(sig.T, dtype=np.float32),
        fs=float(rec.fs),
        leads=leads,
        file_leads=raw if raw != leads else None,
        units=units.pop() if units else None,
        source=f"{name}.hea",
        demographics=parse_header_demographics(rec.comments or []),
    )


class WfdbSource(EcgSource):
    """All WFDB records in a folder (searched recursively) or a single ``.hea`` file.

    Records are read one at a time, in sorted order of their relative paths. The record
    name (the header's base name without ``.hea``) is the identifier, so names must be
    unique across sub-folders.

    Parameters
    ----------
    path : str or Path
        A folder or one ``.hea`` file.
    """

    format = "wfdb"

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        super().__init__(p.name)
        _wfdb()  # fail early with the install hint
        if p.is_dir():
            headers = sorted(p.rglob("*.hea"), key=lambda h: h.relative_to(p).as_posix())
            if not headers:
                raise InputError(
                    f"folder '{p.name}' holds no WFDB header (.hea) files; point --ecgs at a "
                    "folder of .hea/.dat or .hea/.mat records, an .npy/.npz array or an .h5 file"
                )
        elif p.suffix == ".hea" and p.is_file():
            headers = [p]
        else:
            raise InputError(f"WFDB input '{p.name}' is neither a folder nor a .hea file")
        self._headers = headers
        self._ids: list[str | int] = [h.stem for h in headers]
        check_unique_ids(self._ids, p.name)

    def __len__(self) -> int:
        return len(self._headers)

    @property
    def ids(self) -> Sequence[str | int]:
        """Record names, in iteration order."""
        return self._ids

    def __iter__(self) -> Iterator[EcgRecord]:
        for h in self._headers:
            yield read_wfdb_record(h)
