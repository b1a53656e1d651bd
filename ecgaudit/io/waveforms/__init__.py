"""ECG waveform readers: WFDB (PTB-XL, PhysioNet Challenge), NumPy arrays and HDF5 (CODE-15%).

Every reader is an :class:`EcgSource`: iterate it to get :class:`EcgRecord` objects one at
a time, so large collections never sit in memory at once. :func:`open_ecgs` picks the reader
from the path::

    from ecgaudit.io.waveforms import open_ecgs
    for rec in open_ecgs("records/"):          # a folder of .hea/.dat or .hea/.mat
        rec.record_id, rec.signal.shape, rec.fs, rec.leads, rec.units, rec.demographics

WFDB and HDF5 need the optional extra ``pip install 'ecgaudit[ecg]'`` (``wfdb``, ``h5py``);
they are imported only when such a file is read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecgaudit.errors import InputError
from ecgaudit.io.waveforms._arrays import Hdf5Source, NumpySource
from ecgaudit.io.waveforms._record import (
    ECG_EXTRA_HINT,
    STANDARD_LEADS,
    EcgRecord,
    EcgSource,
    canonical_lead,
    canonical_unit,
)
from ecgaudit.io.waveforms._wfdb import WfdbSource, parse_header_demographics, read_wfdb_record

__all__ = [
    "ECG_EXTRA_HINT",
    "STANDARD_LEADS",
    "EcgRecord",
    "EcgSource",
    "Hdf5Source",
    "NumpySource",
    "WfdbSource",
    "canonical_lead",
    "canonical_unit",
    "open_ecgs",
    "parse_header_demographics",
    "read_wfdb_record",
]

_H5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def open_ecgs(path: str | Path, **spec: Any) -> EcgSource:
    """Open a collection of ECGs, choosing the reader from the path.

    Parameters
    ----------
    path : str or Path
        A folder of WFDB records (searched recursively) or one ``.hea`` file; an ``.npy`` /
        ``.npz`` array ``(N, leads, samples)``; or an ``.h5`` / ``.hdf5`` file (CODE-15%).
    **spec
        For array files only: ``fs``, ``leads``, ``units``, ``index``, ``id_column``,
        ``layout`` (override the JSON sidecar, see :class:`NumpySource`).

    Returns
    -------
    EcgSource

    Raises
    ------
    InputError
        If the path does not exist or its format is not recognised.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"ECG input '{p.name}' does not exist")
    suffix = p.suffix.lower()
    if p.is_dir() or suffix == ".hea":
        if spec:
            raise InputError(
                f"WFDB records describe themselves; options {sorted(spec)} apply to array files"
            )
        return WfdbSource(p)
    if suffix in (".npy", ".npz"):
        return NumpySource(p, **spec)
    if suffix in _H5_SUFFIXES:
        return Hdf5Source(p, **spec)
    raise InputError(
        f"ECG input '{p.name}': unrecognised format '{suffix}'; give a folder of WFDB records "
        "(.hea + .dat/.mat), an .npy/.npz array with an index CSV, or an .h5 file"
    )
