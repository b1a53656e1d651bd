"""WFDB readers on real PTB-XL and PhysioNet Challenge 2021 records (3 sources)."""

from __future__ import annotations

import inspect
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

from ecgaudit.errors import InputError
from ecgaudit.io.waveforms import (
    STANDARD_LEADS,
    WfdbSource,
    canonical_lead,
    open_ecgs,
    parse_header_demographics,
    read_wfdb_record,
)

FIX = Path(__file__).resolve().parent / "fixtures" / "waveforms"
CINC = FIX / "cinc2021"
PTBXL = FIX / "ptbxl_wfdb" / "00001_lr"

# Facts read from the header files by eye (cat *.hea), one line per record.
CHALLENGE = {
    "E07500": (78.0, "male"),    # Georgia / Emory, USA
    "E07501": (65.0, "male"),
    "HR06000": (59.0, "female"),  # PTB-XL, Germany (units written "mv")
    "HR06001": (78.0, "female"),
    "JS20000": (84.0, "female"),  # Chapman / Ningbo, China
    "JS20001": (77.0, "male"),
}


def _header_gain_baseline(hea: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse ADC gain and baseline from a WFDB header by hand (independent of wfdb)."""
    gains, bases = [], []
    for line in hea.read_text().splitlines()[1:]:
        if line.startswith("#") or not line.strip():
            continue
        m = re.search(r"\s([\d.]+)(?:\((-?\d+)\))?/\w+", line)
        assert m is not None
        gains.append(float(m.group(1)))
        bases.append(float(m.group(2) or 0))
    return np.array(gains), np.array(bases)


def test_ptbxl_wfdb_record_matches_a_manual_decode() -> None:
    rec = read_wfdb_record(PTBXL.with_suffix(".hea"))
    assert rec.record_id == "00001_lr"
    assert rec.signal.shape == (12, 1000)
    assert rec.signal.dtype == np.float32
    assert rec.fs == 100.0
    assert rec.units == "mV"
    # The file says AVR/AVL/AVF; the reader reports the canonical spelling.
    assert rec.leads == STANDARD_LEADS
    assert "AVR" in PTBXL.with_suffix(".hea").read_text()
    # Format 16: little-endian int16, interleaved; physical = (adc - baseline) / gain.
    raw = np.fromfile(PTBXL.with_suffix(".dat"), dtype="<i2").reshape(1000, 12).T
    gain, base = _header_gain_baseline(PTBXL.with_suffix(".hea"))
    expected = (raw - base[:, None]) / gain[:, None]
    np.testing.assert_allclose(rec.signal, expected, atol=1e-6)
    assert rec.demographics == {}


@pytest.mark.parametrize("name", sorted(CHALLENGE))
def test_challenge_records_from_three_sources(name: str) -> None:
    rec = read_wfdb_record(CINC / f"{name}.hea")
    assert rec.signal.shape == (12, 5000)
    assert rec.fs == 500.0
    assert rec.duration_s == 10.0
    assert rec.leads == STANDARD_LEADS
    assert rec.units == "mV"
    age, sex = CHALLENGE[name]
    assert rec.demographics == {"age": age, "sex": sex}
    # .mat files hold int16 ADC values under 'val'; gain 1000/mV, baseline 0.
    val = loadmat(CINC / f"{name}.mat")["val"]
    gain, base = _header_gain_baseline(CINC / f"{name}.hea")
    np.testing.assert_allclose(rec.signal, (val - base[:, None]) / gain[:, None], atol=1e-6)


def test_folder_source_is_lazy_sorted_and_complete() -> None:
    src = open_ecgs(CINC)
    assert isinstance(src, WfdbSource)
    assert len(src) == 6
    assert list(src.ids) == sorted(CHALLENGE)
    it = iter(src)
    assert inspect.isgenerator(it)
    first = next(it)
    assert first.record_id == "E07500"
    rest = list(it)
    assert [r.record_id for r in rest] == sorted(CHALLENGE)[1:]
    assert src.describe() == {"format": "wfdb", "name": "cinc2021", "n_records": 6}


def test_recursive_folder_and_duplicate_names(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        for ext in (".hea", ".mat"):
            shutil.copy(CINC / f"E07500{ext}", tmp_path / sub / f"E07500{ext}")
    with pytest.raises(InputError, match=r"unique; 1 repeated, at records 2"):
        open_ecgs(tmp_path)
    shutil.rmtree(tmp_path / "b")
    assert [r.record_id for r in open_ecgs(tmp_path)] == ["E07500"]


@pytest.mark.parametrize(("name", "ext", "keep"), [
    ("E07500", ".mat", 50_000), ("00001_lr", ".dat", 10_000), ("00001_lr", ".dat", 12_000),
])
def test_truncated_signal_file_is_an_input_error(
    tmp_path: Path, name: str, ext: str, keep: int
) -> None:
    src_dir = CINC if name.startswith("E") else PTBXL.parent
    shutil.copy(src_dir / f"{name}.hea", tmp_path / f"{name}.hea")
    data = (src_dir / f"{name}{ext}").read_bytes()
    (tmp_path / f"{name}{ext}").write_bytes(data[:keep])
    with pytest.raises(InputError, match=rf"'{name}'.*truncated"):
        read_wfdb_record(tmp_path / f"{name}.hea")


def test_missing_signal_file(tmp_path: Path) -> None:
    shutil.copy(CINC / "E07500.hea", tmp_path / "E07500.hea")
    with pytest.raises(InputError, match=r"E07500.*missing"):
        list(open_ecgs(tmp_path))


def test_empty_folder_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no WFDB header"):
        open_ecgs(tmp_path)
    (tmp_path / "x.edf").write_bytes(b"0")
    with pytest.raises(InputError, match=r"unrecognised format '.edf'"):
        open_ecgs(tmp_path / "x.edf")
    with pytest.raises(InputError, match="does not exist"):
        open_ecgs(tmp_path / "nope.npy")


def test_header_demographics_edge_cases() -> None:
    assert parse_header_demographics(["Age: NaN", "Sex: Unknown"]) == {"age": None, "sex": None}
    assert parse_header_demographics(["# Age: 61.5", "#Sex: F", "Dx: 1"]) == {
        "age": 61.5, "sex": "female"}
    assert parse_header_demographics(["age:-1", "SEX: m"]) == {"age": None, "sex": "male"}
    assert parse_header_demographics(["Dx: 426783006"]) == {}


def test_lead_name_spellings() -> None:
    assert [canonical_lead(x) for x in ("AVR", "avl", "aVF", "DI", "DIII", "v1", " V6 ")] == [
        "aVR", "aVL", "aVF", "I", "III", "V1", "V6"]
    assert canonical_lead("ECG1") == "ECG1"


def test_missing_wfdb_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wfdb", None)  # makes `import wfdb` raise ImportError
    with pytest.raises(InputError, match=r"pip install 'ecgaudit\[ecg\]'"):
        open_ecgs(CINC)
