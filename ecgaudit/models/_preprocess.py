"""Explicit, recorded preprocessing from a raw :class:`EcgRecord` to model input windows.

Order: lead selection/reordering -> finite-sample check -> unit conversion -> resampling
(``scipy.signal.resample_poly``) -> band-pass (zero-phase Butterworth) -> per-lead z-score
-> windowing. A step that the model config does not allow is never applied silently: a
mismatch raises :class:`InputError` saying expected vs found and which config key allows it.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
from scipy import signal as sps

from ecgaudit.errors import InputError
from ecgaudit.io.waveforms import EcgRecord, canonical_lead
from ecgaudit.models._config import ModelConfig

__all__ = ["Preprocessor", "preprocess"]

_UNIT_SCALE = {"V": 1.0, "mV": 1e-3, "uV": 1e-6}
_ZSCORE_EPS = 1e-8


def _where(rec: EcgRecord) -> str:
    return f"ECG '{rec.record_id}' ({rec.source})"


class Preprocessor:
    """Turn records into model input windows as the model config prescribes.

    Parameters
    ----------
    config : ModelConfig
        The model's declared input contract.

    Attributes
    ----------
    steps : dict
        Every step applied so far, keyed by a short description, with the number of
        records it was applied to; :meth:`manifest` returns them in order.
    """

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.leads = tuple(canonical_lead(x) for x in config.leads)
        self.steps: dict[str, int] = {}
        self._sos: dict[float, np.ndarray] = {}

    def _note(self, step: str) -> None:
        self.steps[step] = self.steps.get(step, 0) + 1

    def manifest(self) -> list[dict[str, Any]]:
        """Return the applied steps, in first-use order, with record counts."""
        return [{"step": s, "records": n} for s, n in self.steps.items()]

    def _select_leads(self, rec: EcgRecord) -> np.ndarray:
        if rec.file_leads is not None:
            renamed = [f"{a}->{b}" for a, b in zip(rec.file_leads, rec.leads) if a != b]
            self._note(f"rename leads {', '.join(renamed)}")
        have = {name: i for i, name in enumerate(rec.leads)}
        missing = [ld for ld in self.leads if ld not in have]
        if missing:
            raise InputError(
                f"{_where(rec)}: missing leads {missing}; the model expects {list(self.leads)}, "
                f"the record has {list(rec.leads)}"
            )
        order = [have[ld] for ld in self.leads]
        if order != list(range(len(rec.leads))):
            if not self.config.preprocessing.reorder_leads:
                raise InputError(
                    f"{_where(rec)}: leads are {list(rec.leads)} but the model expects "
                    f"{list(self.leads)} in that order; set preprocessing.reorder_leads: true"
                )
            self._note(f"select and reorder leads by name to {list(self.leads)}")
            return rec.signal[order]
        return rec.signal

    def _check_finite(self, rec: EcgRecord, x: np.ndarray) -> None:
        bad = ~np.isfinite(x)
        if bad.any():
            per_lead = bad.sum(axis=1)
            detail = ", ".join(f"{self.leads[i]}: {int(n)}" for i, n in enumerate(per_lead) if n)
            raise InputError(
                f"{_where(rec)}: NaN or infinite samples (lead: count) {detail}; the model "
                "cannot score gaps: repair or drop this record"
            )

    def _units(self, rec: EcgRecord, x: np.ndarray) -> np.ndarray:
        want = self.config.units
        if want is None or rec.units == want:
            return x
        if rec.units is None:
            raise InputError(
                f"{_where(rec)}: signal units are unknown but the model expects {want}; "
                "state the units (sidecar 'units' key for array files)"
            )
        convertible = rec.units in _UNIT_SCALE and want in _UNIT_SCALE
        if not (convertible and self.config.preprocessing.convert_units):
            how = ("set preprocessing.convert_units: true" if convertible
                   else "convert the signals first")
            raise InputError(
                f"{_where(rec)}: units mismatch: the model expects {want}, found {rec.units}; "
                f"{how}"
            )
        self._note(f"convert units {rec.units} -> {want}")
        return x * (_UNIT_SCALE[rec.units] / _UNIT_SCALE[want])

    def _resample(self, rec: EcgRecord, x: np.ndarray) -> np.ndarray:
        want = self.config.fs
        if rec.fs == want:
            return x
        if not self.config.preprocessing.resample:
            raise InputError(
                f"{_where(rec)}: sampling rate mismatch: the model expects {want:g} Hz, "
                f"found {rec.fs:g} Hz; set preprocessing.resample: true to resample with "
                "scipy.signal.resample_poly"
            )
        ratio = Fraction(want / rec.fs).limit_denominator(1000)
        self._note(
            f"resample {rec.fs:g} -> {want:g} Hz (resample_poly up={ratio.numerator}, "
            f"down={ratio.denominator})"
        )
        return sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=1)

    def _bandpass(self, rec: EcgRecord, x: np.ndarray) -> np.ndarray:
        bp = self.config.preprocessing.bandpass
        if bp is None:
            return x
        fs = self.config.fs
        if fs not in self._sos:
            if bp.low is not None and bp.high is not None:
                band, kind = [bp.low, bp.high], "bandpass"
            elif bp.low is not None:
                band, kind = bp.low, "highpass"
            else:
                band, kind = bp.high, "lowpass"
            if bp.high is not None and bp.high >= fs / 2:
                raise InputError(
                    f"band-pass high edge {bp.high:g} Hz must be below Nyquist ({fs / 2:g} Hz)"
                )
            self._sos[fs] = sps.butter(bp.order, band, btype=kind, fs=fs, output="sos")
        sos = self._sos[fs]
        padlen = 3 * (2 * sos.shape[0] + 1)
        if x.shape[1] <= padlen:
            raise InputError(f"{_where(rec)}: too short ({x.shape[1]} samples) to band-pass")
        self._note(f"band-pass {bp.low}-{bp.high} Hz (Butterworth order {bp.order}, zero-phase)")
        return sps.sosfiltfilt(sos, x, axis=1)

    def _zscore(self, x: np.ndarray) -> np.ndarray:
        if not self.config.preprocessing.zscore:
            return x
        self._note("z-score each lead (per record)")
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=1, keepdims=True)
        std = x.std(axis=1, keepdims=True)
        return np.where(std > _ZSCORE_EPS, (x - mean) / np.maximum(std, _ZSCORE_EPS), 0.0)

    def _windows(self, rec: EcgRecord, x: np.ndarray) -> np.ndarray:
        win = self.config.window
        n = x.shape[1]
        if win is None:
            need = self.config.input_samples
            if need is not None and n != need:
                raise InputError(
                    f"{_where(rec)}: the model takes exactly {need} samples, found {n} "
                    f"(after resampling); configure a window to cut longer records"
                )
            return x[None]
        if n < win.length:
            raise InputError(
                f"{_where(rec)}: {n} samples ({n / self.config.fs:g} s at {self.config.fs:g} Hz) "
                f"is shorter than the model window of {win.length} samples; the file may be "
                "truncated"
            )
        stride = win.stride or win.length
        starts = range(0, n - win.length + 1, stride)
        self._note(f"windows of {win.length} samples every {stride}, {win.aggregate} over windows")
        return np.stack([x[:, s:s + win.length] for s in starts])

    def __call__(self, rec: EcgRecord) -> np.ndarray:
        """Return windows ``(n_windows, leads, samples)`` (float32) for one record.

        Raises
        ------
        InputError
            On missing leads, non-finite samples, or a rate / unit / length mismatch the
            config does not allow to fix.
        """
        x = self._select_leads(rec)
        self._check_finite(rec, x)
        x = self._units(rec, x)
        x = self._resample(rec, x)
        x = self._bandpass(rec, x)
        x = self._zscore(x)
        return np.ascontiguousarray(self._windows(rec, x), dtype=np.float32)


def preprocess(record: EcgRecord, config: ModelConfig) -> np.ndarray:
    """Preprocess one record for a model (see :class:`Preprocessor`).

    Parameters
    ----------
    record : EcgRecord
        A record from any reader in :mod:`ecgaudit.io.waveforms`.
    config : ModelConfig
        The model config.

    Returns
    -------
    numpy.ndarray
        ``(n_windows, leads, samples)`` float32.
    """
    return Preprocessor(config)(record)
