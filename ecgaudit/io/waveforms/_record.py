"""The record type every waveform reader yields, and the names readers agree on."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecgaudit._text import id_examples
from ecgaudit.errors import InputError, format_rows

__all__ = [
    "ECG_EXTRA_HINT",
    "STANDARD_LEADS",
    "EcgRecord",
    "EcgSource",
    "canonical_lead",
    "canonical_unit",
    "require_optional",
]

#: The 12 standard leads in the usual order.
STANDARD_LEADS: tuple[str, ...] = (
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
)

ECG_EXTRA_HINT = "install the optional ECG readers with: pip install 'ecgaudit[ecg]'"

_LEAD_ALIASES = {
    "DI": "I", "DII": "II", "DIII": "III", "LEADI": "I", "LEADII": "II", "LEADIII": "III",
    "AVR": "aVR", "AVL": "aVL", "AVF": "aVF",
}
_UNIT_ALIASES = {
    "mv": "mV", "millivolt": "mV", "millivolts": "mV",
    "uv": "uV", "µv": "uV", "μv": "uV", "microvolt": "uV", "microvolts": "uV",
    "v": "V", "volt": "V", "volts": "V",
}


def canonical_lead(name: str) -> str:
    """Return the canonical spelling of a lead name (``AVR`` -> ``aVR``, ``DII`` -> ``II``).

    Parameters
    ----------
    name : str
        A lead name as written in a file.

    Returns
    -------
    str
        ``I, II, III, aVR, aVL, aVF, V1..V6`` for the standard leads; other names stripped only.
    """
    key = name.strip().replace(" ", "").upper()
    if key in _LEAD_ALIASES:
        return _LEAD_ALIASES[key]
    if key.startswith("V") and key[1:].isdigit():
        return key
    return name.strip()


def canonical_unit(unit: str | None) -> str | None:
    """Return ``mV``, ``uV`` or ``V`` for known spellings, else the stripped input (or None)."""
    if unit is None:
        return None
    u = unit.strip()
    return _UNIT_ALIASES.get(u.lower(), u) if u else None


def require_optional(module: str) -> Any:
    """Import an optional dependency or raise an :class:`InputError` that says how to install it.

    Parameters
    ----------
    module : str
        ``"wfdb"`` or ``"h5py"``.

    Returns
    -------
    module
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(
            f"reading this ECG format needs the '{module}' package, which is not installed; "
            f"{ECG_EXTRA_HINT}"
        ) from None


@dataclass(frozen=True)
class EcgRecord:
    """One ECG as read from a file, before any preprocessing.

    Attributes
    ----------
    record_id : str or int
        The identifier joined with metadata (record name, ``exam_id`` or index-file id).
    signal : numpy.ndarray
        ``(leads, samples)`` float32 array in ``units``.
    fs : float
        Sampling rate in Hz.
    leads : tuple of str
        Lead names in canonical spelling (see :func:`canonical_lead`), one per row of
        ``signal``.
    units : str or None
        Physical unit shared by all leads (``mV``, ``uV``, ``V``), ``None`` if unknown, or
        another string such as ``normalised`` for already-normalised data.
    source : str
        The file's base name (never a full path), for error messages.
    demographics : dict
        Demographics read from the file itself (Challenge headers: ``age``, ``sex``).
    file_leads : tuple of str, optional
        Lead names as written in the file (e.g. ``AVR``), when they differ from ``leads``.
    """

    record_id: str | int
    signal: np.ndarray
    fs: float
    leads: tuple[str, ...]
    units: str | None
    source: str
    demographics: dict[str, Any] = field(default_factory=dict)
    file_leads: tuple[str, ...] | None = None

    @property
    def n_samples(self) -> int:
        """Number of samples per lead."""
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        """Duration in seconds."""
        return self.n_samples / self.fs


class EcgSource(abc.ABC):
    """A collection of ECG records read lazily, one at a time (or a chunk at a time).

    Subclasses read one file format; iterate to get :class:`EcgRecord` objects in a stable
    order. Only one record (or one small chunk) is in memory at a time.
    """

    #: Short format name recorded in the manifest (``wfdb``, ``numpy``, ``hdf5``).
    format: str = ""

    def __init__(self, name: str) -> None:
        self.name = name

    @abc.abstractmethod
    def __len__(self) -> int:
        """Return the number of records."""

    @property
    @abc.abstractmethod
    def ids(self) -> Sequence[str | int]:
        """The record identifiers, in iteration order."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[EcgRecord]:
        """Yield the records in order."""

    def describe(self) -> dict[str, Any]:
        """Return a JSON-serialisable description for the manifest (no full paths)."""
        return {"format": self.format, "name": self.name, "n_records": len(self)}

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op for most readers
        """Release open file handles (HDF5); reading again afterwards is not supported."""

    def __enter__(self) -> EcgSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_unique_ids(ids: Sequence[Any], source: str) -> None:
    """Raise :class:`InputError` if record identifiers repeat.

    Parameters
    ----------
    ids : sequence
        Identifiers in file order.
    source : str
        File base name for the message.
    """
    seen: set[Any] = set()
    dup: list[Any] = []
    rows: list[int] = []
    for row, i in enumerate(ids, start=1):
        if i in seen:
            rows.append(row)
            if len(dup) < 5:
                dup.append(i)
        seen.add(i)
    if dup:
        raise InputError(
            f"{source}: record identifiers must be unique; {len(rows)} repeated, at "
            f"records {format_rows(rows)} ({id_examples(dup)}). "
            "Give each ECG its own id in the index file."
        )
