"""Preprocessing: lead matching, NaN, units, resampling, band-pass, z-score, windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ecgaudit.errors import InputError
from ecgaudit.io.waveforms import STANDARD_LEADS, EcgRecord, read_wfdb_record
from ecgaudit.models import ModelConfig, Preprocessor, parse_model_config, preprocess

FIX = Path(__file__).resolve().parent / "fixtures" / "waveforms"


def _cfg(**kw: Any) -> ModelConfig:
    base: dict[str, Any] = {"fs": 100, "leads": list(STANDARD_LEADS), "classes": ["A"],
                            "window": {"length": 300, "stride": 150}}
    base.update(kw)
    return parse_model_config(base)


def _rec(x: np.ndarray, fs: float = 100.0, leads: tuple[str, ...] = STANDARD_LEADS,
         units: str | None = "mV") -> EcgRecord:
    return EcgRecord("r1", x.astype(np.float32), fs, leads, units, "test.npy")


def _noise(leads: int = 12, n: int = 1000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(leads, n))


def test_windows_are_the_documented_slices() -> None:
    x = _noise()
    w = preprocess(_rec(x), _cfg())
    assert w.shape == (5, 12, 300) and w.dtype == np.float32
    for k in range(5):
        np.testing.assert_array_equal(w[k], x[:, 150 * k:150 * k + 300].astype(np.float32))
    # Trailing samples that do not fill a window are dropped: 1100 -> still 5 windows.
    assert preprocess(_rec(_noise(n=1100)), _cfg()).shape[0] == 6
    assert preprocess(_rec(_noise(n=1049)), _cfg()).shape[0] == 5


def test_short_record_and_fixed_input_length() -> None:
    with pytest.raises(InputError, match=r"ECG 'r1' \(test.npy\): 250 samples .* shorter than "
                                         r"the model window of 300"):
        preprocess(_rec(_noise(n=250)), _cfg())
    cfg = _cfg(window=None, input_samples=1000)
    assert preprocess(_rec(_noise()), cfg).shape == (1, 12, 1000)
    with pytest.raises(InputError, match="exactly 1000 samples, found 900"):
        preprocess(_rec(_noise(n=900)), cfg)


def test_wrong_sampling_rate_is_an_error_unless_resampling_is_configured() -> None:
    t = np.arange(5000) / 500.0
    x = np.tile(np.sin(2 * np.pi * 5 * t), (12, 1))
    with pytest.raises(InputError, match=r"expects 100 Hz, found 500 Hz; set "
                                         r"preprocessing.resample: true"):
        preprocess(_rec(x, fs=500), _cfg())
    prep = Preprocessor(_cfg(preprocessing={"resample": True}, window={"length": 1000}))
    w = prep(_rec(x, fs=500))
    assert w.shape == (1, 12, 1000)
    # A 5 Hz sine sampled at 100 Hz, away from the edges (closed form).
    t100 = np.arange(1000) / 100.0
    np.testing.assert_allclose(w[0, 0, 50:950], np.sin(2 * np.pi * 5 * t100[50:950]), atol=2e-3)
    assert prep.manifest()[0]["step"] == "resample 500 -> 100 Hz (resample_poly up=1, down=5)"


def test_missing_leads_are_named() -> None:
    leads = tuple(x for x in STANDARD_LEADS if x not in ("V3", "aVL"))
    with pytest.raises(InputError, match=r"missing leads \['aVL', 'V3'\]"):
        preprocess(_rec(_noise(leads=10), leads=leads), _cfg())


def test_leads_are_reordered_by_name_including_avr_spelling() -> None:
    x = _noise()
    perm = np.random.default_rng(1).permutation(12)
    shuffled = tuple(STANDARD_LEADS[i] for i in perm)
    prep = Preprocessor(_cfg())
    a = prep(_rec(x[perm], leads=shuffled))
    b = preprocess(_rec(x), _cfg())
    np.testing.assert_array_equal(a, b)
    assert prep.manifest()[0]["step"].startswith("select and reorder leads")
    with pytest.raises(InputError, match=r"set preprocessing.reorder_leads: true"):
        preprocess(_rec(x[perm], leads=shuffled), _cfg(preprocessing={"reorder_leads": False}))
    # Model config spelled AVR (upper case), PTB-XL record file spelled AVR too: both canonical.
    upper = [x.upper() if x.startswith("a") else x for x in STANDARD_LEADS]
    rec = read_wfdb_record(FIX / "ptbxl_wfdb" / "00001_lr.hea")
    prep = Preprocessor(_cfg(leads=upper))
    w = prep(rec)
    np.testing.assert_array_equal(w[0], rec.signal[:, :300])
    assert prep.manifest()[0]["step"] == "rename leads AVR->aVR, AVL->aVL, AVF->aVF"


def test_nan_samples_are_reported_per_lead() -> None:
    x = _noise()
    x[3, 10:13] = np.nan
    x[7, 500] = np.inf
    with pytest.raises(InputError, match=r"ECG 'r1' \(test.npy\): NaN or infinite samples "
                                         r"\(lead: count\) aVR: 3, V2: 1"):
        preprocess(_rec(x), _cfg())


def test_units_conversion_is_explicit() -> None:
    x = _noise()
    with pytest.raises(InputError, match=r"expects mV, found uV; set preprocessing.convert_units"):
        preprocess(_rec(x * 1000, units="uV"), _cfg(units="mV"))
    w = preprocess(_rec(x * 1000, units="uV"),
                   _cfg(units="mV", preprocessing={"convert_units": True}))
    np.testing.assert_allclose(w[0], x[:, :300], rtol=1e-6, atol=1e-6)
    with pytest.raises(InputError, match="units are unknown but the model expects mV"):
        preprocess(_rec(x, units=None), _cfg(units="mV"))
    with pytest.raises(InputError, match="expects mV, found normalised; convert the signals"):
        preprocess(_rec(x, units="normalised"),
                   _cfg(units="mV", preprocessing={"convert_units": True}))
    # A model without declared units accepts anything.
    assert preprocess(_rec(x, units="normalised"), _cfg()).shape == (5, 12, 300)


def test_zscore_per_lead_and_flat_lead() -> None:
    x = _noise() * 3 + 7
    x[5] = 2.0  # flat lead: zeros, not NaN
    cfg = _cfg(preprocessing={"zscore": True}, window={"length": 1000})
    w = preprocess(_rec(x), cfg)[0]
    xs = np.delete(x.astype(np.float32).astype(np.float64), 5, 0)
    ref = (xs - xs.mean(1, keepdims=True)) / xs.std(1, keepdims=True)
    np.testing.assert_allclose(np.delete(w, 5, 0), ref, atol=1e-5)
    assert np.all(w[5] == 0)


def test_bandpass_removes_baseline_wander_and_mains() -> None:
    fs = 500.0
    t = np.arange(5000) / fs
    ecg_like = np.sin(2 * np.pi * 8 * t)
    wander = 2.0 * np.sin(2 * np.pi * 0.1 * t + 0.3)
    mains = 0.5 * np.sin(2 * np.pi * 50 * t)
    x = np.tile(ecg_like + wander + mains, (12, 1))
    cfg = _cfg(fs=500, window={"length": 5000},
               preprocessing={"bandpass": {"low": 0.5, "high": 30, "order": 4}})
    prep = Preprocessor(cfg)
    w = prep(_rec(x, fs=500))[0]
    inner = slice(1500, 3500)  # away from filtfilt edge transients
    # |H|^2 of a zero-phase order-4 Butterworth: 50 Hz -> 1/(1+(50/30)^8) = 0.017 (x0.5),
    # 0.1 Hz -> 1/(1+(0.5/0.1)^8) ~ 3e-6 (x2): residual well under 0.02.
    np.testing.assert_allclose(w[0, inner], ecg_like[inner], atol=0.02)
    assert np.abs(x[0, inner] - ecg_like[inner]).max() > 1.0  # the input really was dirty
    assert prep.manifest()[0]["step"] == ("band-pass 0.5-30.0 Hz (Butterworth order 4, "
                                          "zero-phase)")
    with pytest.raises(InputError, match=r"high edge 60 Hz must be below Nyquist \(50 Hz\)"):
        preprocess(_rec(_noise()), _cfg(preprocessing={"bandpass": {"low": 0.5, "high": 60}}))


def test_real_challenge_record_to_100hz_windows() -> None:
    rec = read_wfdb_record(FIX / "cinc2021" / "JS20000.hea")
    cfg = _cfg(units="mV", preprocessing={"resample": True, "bandpass": {}, "zscore": True})
    prep = Preprocessor(cfg)
    w = prep(rec)
    assert w.shape == (5, 12, 300)
    assert np.isfinite(w).all()
    assert [s["step"].split(" ")[0] for s in prep.manifest()] == [
        "resample", "band-pass", "z-score", "windows"]
