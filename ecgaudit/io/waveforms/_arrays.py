"""Array files: NumPy ``.npy`` / ``.npz`` ``(N, leads, samples)`` and HDF5 (CODE-15% layout).

Array files carry no signal metadata, so the sampling rate, lead names and units come from
keyword arguments or a JSON *sidecar* next to the array (``<stem>.json``)::

    {"fs": 100, "leads": ["I", "II", ...], "units": "mV",
     "index": "waveforms_index.csv", "id_column": "ecg_id", "layout": "leads_first"}

The index CSV maps array rows to ECG identifiers: an optional ``row`` column (0-based
array row; without it line ``i`` is row ``i``) and an identifier column. Only the rows the
index lists are read, in index order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ecgaudit._text import visible
from ecgaudit.errors import InputError
from ecgaudit.io._paths import contained_path
from ecgaudit.io.waveforms._record import (
    STANDARD_LEADS,
    EcgRecord,
    EcgSource,
    canonical_lead,
    canonical_unit,
    check_unique_ids,
    require_optional,
)

__all__ = ["ArraySpec", "Hdf5Source", "NumpySource", "read_sidecar"]

Layout = Literal["leads_first", "samples_first"]
_SIDECAR_KEYS = {"fs", "leads", "units", "index", "id_column", "layout", "dataset", "id_dataset"}
#: CODE-15% defaults: 400 Hz, leads DI, DII, DIII, AVR, AVL, AVF, V1-V6.
CODE15_FS = 400.0
_CHUNK = 256


class ArraySpec(dict):  # type: ignore[type-arg]
    """Signal description of an array file (a plain dict of the sidecar keys)."""


def read_sidecar(array_path: Path, overrides: dict[str, Any]) -> ArraySpec:
    """Merge the JSON sidecar ``<stem>.json`` (if any) with explicit ``overrides``.

    Parameters
    ----------
    array_path : Path
        The array file.
    overrides : dict
        Keyword values given by the caller; ``None`` values are ignored.

    Returns
    -------
    ArraySpec
        The merged description.
    """
    spec = ArraySpec()
    side = array_path.with_suffix(".json")
    if side.is_file():
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputError(f"sidecar '{side.name}' is not valid JSON") from None
        if not isinstance(data, dict):
            raise InputError(f"sidecar '{side.name}' must be a JSON object")
        unknown = sorted(set(data) - _SIDECAR_KEYS)
        if unknown:
            raise InputError(
                f"sidecar '{side.name}': unknown keys {unknown}; valid: {sorted(_SIDECAR_KEYS)}"
            )
        spec.update(data)
        if "index" in data:
            spec["_source"] = side.name
    given = {k: v for k, v in overrides.items() if v is not None}
    if "index" in given:
        spec["_source"] = "ECG options (--ecg-spec)"
    spec.update(given)
    return spec


def _read_index(
    array_path: Path, spec: ArraySpec, n_rows: int
) -> tuple[np.ndarray, list[Any]] | None:
    """Return (rows, ids) from the index CSV, or None if there is no index file."""
    name = spec.get("index")
    if name is not None:
        cand = [contained_path(array_path.parent, name, key="index",
                               source=spec.get("_source", array_path.name))]
    else:
        cand = [
            array_path.with_name(f"{array_path.stem}_index.csv"),
            array_path.with_suffix(".csv"),
        ]
    found = next((c for c in cand if c.is_file()), None)
    if found is None:
        if name is not None:
            raise InputError(f"index file '{cand[0].name}' named for '{array_path.name}' "
                             "does not exist")
        return None
    try:
        idx = pd.read_csv(found, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, UnicodeDecodeError):
        # Never echo the file's content (it may not be an index at all).
        raise InputError(f"index file '{found.name}' cannot be read as a CSV table") from None
    id_col = spec.get("id_column") or next((c for c in idx.columns if c != "row"), None)
    if id_col is None or id_col not in idx.columns:
        named = f" '{visible(id_col)}'" if isinstance(id_col, str) else ""
        raise InputError(
            f"index file '{found.name}' has no identifier column{named} "
            f"({len(idx.columns)} columns); name it with `id_column` in the sidecar"
        )
    if "row" in idx.columns:
        rows = pd.to_numeric(idx["row"], errors="coerce").to_numpy()
        bad = np.flatnonzero(~np.isfinite(rows) | (rows < 0) | (rows >= n_rows) | (rows % 1 != 0))
        if bad.size:
            raise InputError(
                f"index file '{found.name}', column 'row', rows {(bad[:5] + 1).tolist()}: "
                f"not an array row in 0..{n_rows - 1} of '{array_path.name}'"
            )
        rows = rows.astype(np.int64)
    else:
        if len(idx) != n_rows:
            raise InputError(
                f"index file '{found.name}' has {len(idx)} rows but '{array_path.name}' holds "
                f"{n_rows} ECGs; add a 'row' column or list every ECG"
            )
        rows = np.arange(n_rows)
    if idx[id_col].isna().any():
        raise InputError(f"index file '{found.name}', column '{id_col}': empty identifiers")
    return rows, idx[id_col].tolist()


def _leads_and_layout(
    spec: ArraySpec, shape: tuple[int, ...], name: str
) -> tuple[tuple[str, ...], Layout]:
    layout = spec.get("layout", "leads_first")
    if layout not in ("leads_first", "samples_first"):
        raise InputError(
            f"'{name}': layout must be 'leads_first' or 'samples_first', not {layout!r}"
        )
    if len(shape) != 3:
        raise InputError(
            f"'{name}': expected a 3-D array (N, leads, samples), found shape {tuple(shape)}"
        )
    n_leads = shape[1] if layout == "leads_first" else shape[2]
    leads = spec.get("leads")
    given = "lead names given" if leads is not None else "leads assumed (no 'leads' key)"
    if leads is None:
        leads = STANDARD_LEADS
    if len(leads) != n_leads:
        other = shape[2] if layout == "leads_first" else shape[1]
        flip = "samples_first" if layout == "leads_first" else "leads_first"
        hint = f" (is the layout '{flip}'?)" if other == len(leads) else ""
        raise InputError(
            f"'{name}': {len(leads)} {given} but the array has {n_leads} on its lead axis, "
            f"shape {tuple(shape)}{hint}; set 'leads' / 'layout' in the sidecar"
        )
    return tuple(str(x) for x in leads), layout  # type: ignore[return-value]


class _ArraySource(EcgSource):
    """Shared logic of array-backed sources: a row list, ids and a chunked reader."""

    def _setup(self, path: Path, spec: ArraySpec, shape: tuple[int, ...],
               default_fs: float | None, ids: list[Any] | None) -> None:
        raw, self.layout = _leads_and_layout(spec, shape, path.name)
        self.leads = tuple(canonical_lead(x) for x in raw)
        self.file_leads = raw if raw != self.leads else None
        fs = spec.get("fs", default_fs)
        if fs is None:
            raise InputError(
                f"'{path.name}': sampling rate unknown; add \"fs\": <Hz> to the sidecar "
                f"'{path.with_suffix('.json').name}' or pass fs="
            )
        self.fs = float(fs)
        self.units = canonical_unit(spec.get("units"))
        index = _read_index(path, spec, shape[0])
        if index is not None:
            self.rows, self._ids = index
        elif ids is not None:
            self.rows, self._ids = np.arange(shape[0]), ids
        else:
            raise InputError(
                f"'{path.name}': no index file found; write '{path.stem}_index.csv' with a "
                "'row' column and an identifier column (e.g. 'ecg_id')"
            )
        check_unique_ids(self._ids, path.name)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> Sequence[str | int]:
        """Record identifiers from the index, in iteration order."""
        return self._ids

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __iter__(self) -> Iterator[EcgRecord]:
        for start in range(0, len(self.rows), _CHUNK):
            rows = self.rows[start:start + _CHUNK]
            block = self._read_rows(rows)
            if self.layout == "samples_first":
                block = block.transpose(0, 2, 1)
            block = np.asarray(block, dtype=np.float32)
            for k in range(block.shape[0]):
                yield EcgRecord(
                    record_id=self._ids[start + k],
                    signal=np.ascontiguousarray(block[k]),
                    fs=self.fs,
                    leads=self.leads,
                    units=self.units,
                    source=self.name,
                    file_leads=self.file_leads,
                )

    def describe(self) -> dict[str, Any]:
        """Return format, name, record count, fs, leads and units."""
        out = super().describe()
        out.update(fs=self.fs, leads=list(self.leads), units=self.units)
        return out


class NumpySource(_ArraySource):
    """ECGs stored in one ``.npy`` (memory-mapped, streamed) or ``.npz`` array.

    Parameters
    ----------
    path : str or Path
        The ``.npy`` or ``.npz`` file. An ``.npz`` holds the signals under ``signals`` (or
        as its only array) and may hold identifiers under ``ids``.
    **spec
        ``fs``, ``leads``, ``units``, ``index``, ``id_column``, ``layout`` overriding the
        sidecar.
    """

    format = "numpy"

    def __init__(self, path: str | Path, **spec: Any) -> None:
        p = Path(path)
        super().__init__(p.name)
        if not p.is_file():
            raise InputError(f"ECG array file '{p.name}' does not exist")
        merged = read_sidecar(p, spec)
        ids = None
        try:
            if p.suffix == ".npz":
                with np.load(p, allow_pickle=False) as z:
                    keys = [k for k in z.files if k != "ids"]
                    key = "signals" if "signals" in z.files else None
                    if key is None and len(keys) == 1:
                        key = keys[0]
                    if key is None:
                        raise InputError(
                            f"'{p.name}' holds arrays {z.files}; name the signal array 'signals'"
                        )
                    # .npz members cannot be memory-mapped: use .npy for very large sets.
                    self._data = z[key]
                    if "ids" in z.files:
                        ids = z["ids"].tolist()
            else:
                self._data = np.load(p, mmap_mode="r", allow_pickle=False)
        except InputError:
            raise
        except (ValueError, OSError, EOFError) as err:
            raise InputError(
                f"ECG array file '{p.name}' is truncated or not a NumPy array file ({err})"
            ) from None
        self._setup(p, merged, tuple(self._data.shape), None, ids)

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._data[rows])


class Hdf5Source(_ArraySource):
    """ECGs in an HDF5 file with the CODE-15% layout.

    ``tracings`` is ``(N, samples, leads)`` and ``exam_id`` holds identifiers. Defaults are
    those of CODE-15% (400 Hz; leads DI, DII, DIII, AVR, AVL, AVF, V1-V6); HDF5 attributes
    ``fs``, ``leads`` and ``units`` on the file, then the sidecar / keyword arguments,
    override them. Rows are read a chunk at a time.

    Parameters
    ----------
    path : str or Path
        The ``.h5`` / ``.hdf5`` file.
    **spec
        ``fs``, ``leads``, ``units``, ``layout``, ``dataset`` (default ``tracings``),
        ``id_dataset`` (default ``exam_id``), ``index``, ``id_column``.
    """

    format = "hdf5"

    def __init__(self, path: str | Path, **spec: Any) -> None:
        h5py = require_optional("h5py")
        p = Path(path)
        super().__init__(p.name)
        if not p.is_file():
            raise InputError(f"HDF5 file '{p.name}' does not exist")
        try:
            self._file = h5py.File(p, "r")
        except OSError as err:
            raise InputError(f"HDF5 file '{p.name}' is truncated or not HDF5 ({err})") from None
        attrs = {k: self._file.attrs[k] for k in ("fs", "leads", "units") if k in self._file.attrs}
        if "leads" in attrs:
            attrs["leads"] = [
                x.decode() if isinstance(x, bytes) else str(x) for x in attrs["leads"]
            ]
        if "units" in attrs and isinstance(attrs["units"], bytes):
            attrs["units"] = attrs["units"].decode()
        merged = ArraySpec({"layout": "samples_first", "leads": ["DI", "DII", "DIII", "AVR",
                            "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]})
        merged.update(attrs)
        merged.update(read_sidecar(p, spec))
        dset = merged.get("dataset", "tracings")
        if dset not in self._file:
            raise InputError(
                f"HDF5 file '{p.name}' has no dataset '{dset}'; found {list(self._file)}"
            )
        self._data = self._file[dset]
        id_dset = merged.get("id_dataset", "exam_id")
        ids = self._file[id_dset][()].tolist() if id_dset in self._file else None
        if ids is not None:
            ids = [i.decode() if isinstance(i, bytes) else i for i in ids]
        self._setup(p, merged, tuple(self._data.shape), CODE15_FS, ids)

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        if rows.size and np.all(np.diff(rows) == 1):
            return self._data[int(rows[0]):int(rows[-1]) + 1]
        # h5py fancy indexing needs sorted unique rows.
        uniq, inverse = np.unique(rows, return_inverse=True)
        return np.asarray(self._data[uniq.tolist()])[inverse]

    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._file.close()
