"""Site data for fine-tuning: metadata + waveforms -> aligned model input windows and scores."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ecgaudit.errors import InputError, JoinError, Problem, ValidationError
from ecgaudit.finetune._config import FinetuneConfig
from ecgaudit.io import read_table
from ecgaudit.io.waveforms import open_ecgs
from ecgaudit.models import LoadedModel, ModelConfig, Preprocessor

__all__ = ["SiteData", "load_site_data", "score_windows"]

MAX_SHOWN = 5


@dataclass
class SiteData:
    """The site's records, aligned row by row with their metadata.

    Attributes
    ----------
    frame : pandas.DataFrame
        Metadata rows (fresh index), in metadata order.
    windows : numpy.ndarray
        ``(records, windows, leads, samples)`` float32 model input.
    metadata_name, metadata_sha256 : str
        Base name and SHA-256 of the metadata file.
    windows_sha256 : str
        SHA-256 of the preprocessed input (proves which signals were used).
    ecgs : dict
        Description of the ECG source (format, name, fs, leads, units).
    preprocessing : list of dict
        Preprocessing steps applied.
    """

    frame: pd.DataFrame
    windows: NDArray[np.float32]
    metadata_name: str
    metadata_sha256: str
    windows_sha256: str
    ecgs: dict[str, Any] = field(default_factory=dict)
    preprocessing: list[dict[str, Any]] = field(default_factory=list)


def _unlabelled_rows(frame: pd.DataFrame, unlabelled: tuple[str, str] | None,
                     name: str) -> NDArray[np.bool_]:
    """Rows allowed to have no labels: those whose ``unlabelled[0]`` is ``unlabelled[1]``."""
    if unlabelled is None:
        return np.zeros(len(frame), dtype=bool)
    col, value = unlabelled
    if col not in frame.columns:
        raise InputError(f"metadata '{name}' lacks column '{col}' (adapt.domain_column); "
                         f"columns: {list(map(str, frame.columns))}")
    raw = frame[col]
    num = pd.to_numeric(raw, errors="coerce")
    text = raw.astype("string").str.strip()
    whole = num.notna() & (num == np.round(num))
    text = text.where(~whole, num.round().astype("Int64").astype("string"))
    return (text == value).fillna(False).to_numpy(dtype=bool)


def _check_columns(frame: pd.DataFrame, config: FinetuneConfig, name: str,
                   unlabelled: tuple[str, str] | None = None) -> None:
    need = {config.id_column: "id_column", config.patient_column: "patient_column"}
    need.update({col: f"labels.{task}" for task, col in config.labels.items()})
    need.update({a.column or k: f"attributes.{k}" for k, a in config.attributes.items()})
    missing = [f"'{col}' ({role})" for col, role in need.items() if col not in frame.columns]
    if missing:
        raise InputError(
            f"metadata '{name}' lacks column(s) {', '.join(missing)}; columns: "
            f"{list(map(str, frame.columns))}. Fix the names in the finetune config."
        )
    problems = []
    ids = frame[config.id_column].astype("string")
    dup = np.flatnonzero(ids.duplicated(keep=False).to_numpy())
    if dup.size:
        problems.append(Problem("repeated record id", name, config.id_column,
                                tuple(int(r) + 1 for r in dup)))
    may_miss = _unlabelled_rows(frame, unlabelled, name)
    for task, col in config.labels.items():
        y = pd.to_numeric(frame[col], errors="coerce")
        bad = np.flatnonzero(~y.isin([0, 1]).to_numpy() & ~(may_miss & y.isna().to_numpy()))
        if bad.size:
            problems.append(Problem(f"label of task '{task}' is not 0/1", name, col,
                                    tuple(int(r) + 1 for r in bad),
                                    "fine-tuning needs a known 0/1 label for every record"))
    if problems:
        raise ValidationError(problems)


def load_site_data(
    ecgs: str | Path,
    metadata: str | Path,
    model_config: ModelConfig,
    config: FinetuneConfig,
    *,
    ecg_options: dict[str, Any] | None = None,
    unlabelled: tuple[str, str] | None = None,
) -> SiteData:
    """Read the site's metadata and the matching ECGs, preprocessed for the model.

    Records in the ECG source without a metadata row are skipped (the metadata defines the
    site); a metadata row without a record is an error.

    ``unlabelled = (column, value)`` lets rows whose ``column`` is ``value`` (the target
    domain of ``strategy: adapt``) leave their labels empty.

    Raises
    ------
    InputError, ValidationError, JoinError
        Missing columns, non-binary labels, repeated ids, unmatched records, or records
        whose window counts differ.
    """
    table = read_table(metadata)
    frame = table.frame
    _check_columns(frame, config, table.name, unlabelled)
    keys = frame[config.id_column].astype("string").to_numpy(dtype=object)
    position = {k: i for i, k in enumerate(keys)}
    source = open_ecgs(ecgs, **(ecg_options or {}))
    prep = Preprocessor(model_config)
    slots: list[NDArray[np.float32] | None] = [None] * len(keys)
    for rec in source:
        i = position.get(str(rec.record_id))
        if i is not None:
            slots[i] = prep(rec)
    missing = [str(keys[i]) for i, w in enumerate(slots) if w is None]
    if missing:
        shown = ", ".join(missing[:MAX_SHOWN])
        raise JoinError(
            f"{len(missing)} metadata rows of '{table.name}' have no ECG in '{source.name}' "
            f"(column '{config.id_column}'), e.g. {shown}. Every site record needs its "
            "waveform; drop those rows or add the records."
        )
    shapes = sorted({w.shape for w in slots if w is not None})
    if len(shapes) > 1:
        raise InputError(
            f"site records give different window counts/shapes {shapes[:3]}; fine-tuning "
            "needs records of one length (crop or pad them to the same duration)"
        )
    windows = np.stack([w for w in slots if w is not None]).astype(np.float32, copy=False)
    return SiteData(
        frame=frame,
        windows=windows,
        metadata_name=table.name,
        metadata_sha256=table.sha256,
        windows_sha256=hashlib.sha256(np.ascontiguousarray(windows).tobytes()).hexdigest(),
        ecgs=source.describe(),
        preprocessing=prep.manifest(),
    )


def score_windows(
    model: LoadedModel, windows: NDArray[np.float32], *, batch_records: int = 64
) -> NDArray[np.float64]:
    """Score preprocessed records exactly as ``ecgaudit predict`` does.

    The model's raw outputs go through its output activation, then the window aggregation
    of its config (max or mean over a record's windows).

    Parameters
    ----------
    model : LoadedModel
        Any supported format (torch, TorchScript, ONNX).
    windows : numpy.ndarray
        ``(records, windows, leads, samples)``.
    batch_records : int
        Records per forward pass.

    Returns
    -------
    numpy.ndarray
        ``(records, classes)`` scores.
    """
    cfg = model.config
    agg = cfg.window.aggregate if cfg.window is not None else "max"
    n, w = windows.shape[0], windows.shape[1]
    out = []
    if model.module is not None:
        model.module.eval()
    for start in range(0, n, batch_records):
        block = windows[start:start + batch_records]
        raw = model(block.reshape(-1, *block.shape[2:])).astype(np.float64)
        if cfg.output_activation == "sigmoid":
            prob = 1.0 / (1.0 + np.exp(-raw))
        elif cfg.output_activation == "softmax":
            z = np.exp(raw - raw.max(axis=1, keepdims=True))
            prob = z / z.sum(axis=1, keepdims=True)
        else:
            prob = raw
        prob = prob.reshape(len(block), w, -1)
        out.append(prob.max(axis=1) if agg == "max" else prob.mean(axis=1))
    return np.vstack(out) if out else np.zeros((0, len(cfg.classes)))
