"""NumPy (.npy/.npz + index CSV) and HDF5 (CODE-15% layout) readers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from ecgaudit.errors import InputError
from ecgaudit.io.waveforms import STANDARD_LEADS, Hdf5Source, NumpySource, open_ecgs

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "ptbxl_model"


def _signals(n: int = 7, leads: int = 12, samples: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, leads, samples)).astype(np.float32)


def _write_npy(tmp_path: Path, x: np.ndarray, **sidecar: object) -> Path:
    p = tmp_path / "waves.npy"
    np.save(p, x)
    (tmp_path / "waves.json").write_text(json.dumps({"fs": 100, "units": "mV", **sidecar}))
    return p


def test_npy_with_index_subset_in_index_order(tmp_path: Path) -> None:
    x = _signals()
    p = _write_npy(tmp_path, x)
    pd.DataFrame({"row": [5, 0, 3], "ecg_id": [105, 100, 103]}).to_csv(
        tmp_path / "waves_index.csv", index=False)
    src = open_ecgs(p)
    assert isinstance(src, NumpySource)
    assert len(src) == 3
    recs = list(src)
    assert [r.record_id for r in recs] == ["105", "100", "103"]  # ids are text
    assert all(isinstance(r.record_id, str) for r in recs)  # "00105" stays "00105"
    for r, row in zip(recs, [5, 0, 3]):
        np.testing.assert_array_equal(r.signal, x[row])
        assert r.fs == 100.0 and r.units == "mV" and r.leads == STANDARD_LEADS
        assert r.source == "waves.npy"


def test_index_without_row_column_maps_lines_to_rows(tmp_path: Path) -> None:
    x = _signals(n=3)
    p = _write_npy(tmp_path, x)
    pd.DataFrame({"exam": ["a", "b", "c"]}).to_csv(tmp_path / "waves.csv", index=False)
    recs = list(open_ecgs(p))
    assert [r.record_id for r in recs] == ["a", "b", "c"]
    np.testing.assert_array_equal(recs[2].signal, x[2])
    pd.DataFrame({"exam": ["a", "b"]}).to_csv(tmp_path / "waves.csv", index=False)
    with pytest.raises(InputError, match=r"has 2 rows but 'waves.npy' holds 3 ECGs"):
        open_ecgs(p)


def test_keyword_options_override_the_sidecar(tmp_path: Path) -> None:
    x = _signals(n=2, leads=3)
    p = _write_npy(tmp_path, x, leads=["I", "II", "III"])
    pd.DataFrame({"row": [0, 1], "id": [1, 2]}).to_csv(tmp_path / "waves_index.csv", index=False)
    src = open_ecgs(p, fs=250, leads=["V1", "V2", "AVR"])
    rec = next(iter(src))
    assert rec.fs == 250.0 and rec.leads == ("V1", "V2", "aVR")


def test_npz_with_ids_and_samples_first_layout(tmp_path: Path) -> None:
    x = _signals(n=4)
    p = tmp_path / "w.npz"
    np.savez_compressed(p, signals=x.transpose(0, 2, 1), ids=np.array(["p", "q", "r", "s"]))
    src = open_ecgs(p, fs=500, layout="samples_first")
    recs = list(src)
    assert [r.record_id for r in recs] == ["p", "q", "r", "s"]
    np.testing.assert_array_equal(recs[1].signal, x[1])
    assert recs[0].units is None


def test_lead_count_mismatch_suggests_the_layout(tmp_path: Path) -> None:
    p = tmp_path / "w.npz"
    np.savez(p, signals=_signals(n=2).transpose(0, 2, 1), ids=np.array([1, 2]))
    with pytest.raises(InputError, match=r"12 leads assumed .*has 400 on its lead axis.*is the layout 'samples_first'"):
        open_ecgs(p, fs=100)


def test_missing_fs_index_and_ids(tmp_path: Path) -> None:
    p = tmp_path / "w.npy"
    np.save(p, _signals(n=2))
    with pytest.raises(InputError, match="sampling rate unknown"):
        open_ecgs(p)
    with pytest.raises(InputError, match=r"no index file found; write 'w_index.csv'"):
        open_ecgs(p, fs=100)
    pd.DataFrame({"row": [0, 1, 2], "id": [1, 2, 3]}).to_csv(tmp_path / "w_index.csv",
                                                              index=False)
    with pytest.raises(InputError, match=r"column 'row', rows \[3\]: not an array row in 0..1"):
        open_ecgs(p, fs=100)
    pd.DataFrame({"row": [0, 1], "id": [1, 1]}).to_csv(tmp_path / "w_index.csv", index=False)
    with pytest.raises(InputError, match=r"unique; 1 repeated, at records 2"):
        open_ecgs(p, fs=100)


def test_truncated_npy_and_bad_sidecar(tmp_path: Path) -> None:
    p = _write_npy(tmp_path, _signals())
    p.write_bytes(p.read_bytes()[:5000])
    with pytest.raises(InputError, match=r"waves.npy' is truncated"):
        open_ecgs(p)
    (tmp_path / "waves.json").write_text('{"fs": 100, "sampling_rate": 5}')
    with pytest.raises(InputError, match=r"unknown keys \['sampling_rate'\]"):
        open_ecgs(p)


def test_pickled_object_array_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "w.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="truncated or not a NumPy array"):
        open_ecgs(p, fs=100)


def test_example_subset_reads_real_ptbxl_waveforms() -> None:
    src = open_ecgs(EXAMPLE / "waveforms_fold10.npz")
    assert len(src) == 194
    meta = pd.read_csv(EXAMPLE / "metadata.csv")
    assert list(src.ids) == meta["ecg_id"].astype(str).tolist()
    rec = next(iter(src))
    assert rec.signal.shape == (12, 1000) and rec.fs == 100.0 and rec.units == "normalised"
    # The shared file is z-scored per lead: check it really is (float16 storage).
    np.testing.assert_allclose(rec.signal.mean(axis=1), 0, atol=0.01)
    np.testing.assert_allclose(rec.signal.std(axis=1), 1, atol=0.01)


def _write_code15(path: Path, x_nsl: np.ndarray, exam_id: np.ndarray, **attrs: object) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("tracings", data=x_nsl)
        f.create_dataset("exam_id", data=exam_id)
        for k, v in attrs.items():
            f.attrs[k] = v


def test_hdf5_code15_layout(tmp_path: Path) -> None:
    x = _signals(n=300, samples=512)  # more than one read chunk
    p = tmp_path / "exams_part0.hdf5"
    ids = np.arange(1000, 1300, dtype=np.int64)
    _write_code15(p, x.transpose(0, 2, 1), ids)
    src = open_ecgs(p)
    assert isinstance(src, Hdf5Source)
    recs = list(src)
    assert len(recs) == 300 and recs[299].record_id == 1299
    assert recs[0].fs == 400.0  # CODE-15% default
    assert recs[0].leads == STANDARD_LEADS  # DI, DII, ..., AVR mapped to canonical names
    assert recs[0].file_leads is not None and recs[0].file_leads[:4] == ("DI", "DII", "DIII",
                                                                        "AVR")
    assert recs[0].units is None
    np.testing.assert_array_equal(recs[257].signal, x[257])
    src.close()


def test_hdf5_attributes_and_unsorted_index(tmp_path: Path) -> None:
    x = _signals(n=5, samples=64)
    p = tmp_path / "t.h5"
    _write_code15(p, x.transpose(0, 2, 1), np.arange(5), fs=500.0, units="mV")
    pd.DataFrame({"row": [4, 1, 1 + 2], "exam_id": [9, 8, 7]}).to_csv(
        tmp_path / "t_index.csv", index=False)
    recs = list(open_ecgs(p))
    assert [r.record_id for r in recs] == ["9", "8", "7"]
    assert recs[0].fs == 500.0 and recs[0].units == "mV"
    for r, row in zip(recs, [4, 1, 3]):
        np.testing.assert_array_equal(r.signal, x[row])


def test_hdf5_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "bad.h5"
    p.write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match=r"bad.h5' is truncated or not HDF5"):
        open_ecgs(p)
    q = tmp_path / "other.h5"
    with h5py.File(q, "w") as f:
        f.create_dataset("signals", data=np.zeros((1, 10, 12)))
    with pytest.raises(InputError, match=r"no dataset 'tracings'; found \['signals'\]"):
        open_ecgs(q)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(InputError, match=r"pip install 'ecgaudit\[ecg\]'"):
        open_ecgs(q)
