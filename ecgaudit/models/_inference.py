"""Batched, deterministic inference from an ECG collection to a predictions table."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ecgaudit._text import id_examples, visible
from ecgaudit.errors import InputError, JoinError, ModelLoadError, format_rows
from ecgaudit.io import read_table
from ecgaudit.io.waveforms import EcgRecord, EcgSource, open_ecgs
from ecgaudit.models._config import ModelConfig, load_model_config
from ecgaudit.models._loading import LoadedModel, load_model
from ecgaudit.models._postprocess import apply_postprocess, postprocess_manifest
from ecgaudit.models._preprocess import Preprocessor

__all__ = ["MANIFEST_ATTR", "Predictions", "predict", "predict_detailed", "run_inference"]

#: Key of ``DataFrame.attrs`` holding the inference manifest on :func:`predict`'s output.
MANIFEST_ATTR = "ecgaudit_inference"

Progress = Callable[[int, int], None]


def _activate(raw: np.ndarray, activation: str) -> np.ndarray:
    raw = raw.astype(np.float64)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-raw))
    if activation == "softmax":
        z = np.exp(raw - raw.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)
    return raw


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (restored afterwards)."""
    if not threads:
        yield
        return
    if threads < 1:
        raise InputError(f"threads must be a positive integer, not {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_inference(
    model: LoadedModel,
    records: Iterable[EcgRecord],
    *,
    n_total: int | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
    preprocessor: Preprocessor | None = None,
    postprocess: bool = True,
) -> tuple[list[Any], np.ndarray]:
    """Score records in batches of windows under ``torch.inference_mode()``.

    Parameters
    ----------
    model : LoadedModel
        From :func:`~ecgaudit.models.load_model`.
    records : iterable of EcgRecord
        Read lazily; only one batch of windows is held at a time.
    n_total : int, optional
        Number of records, for progress reporting.
    batch_size : int
        Windows per forward pass.
    progress : callable, optional
        ``progress(n_done, n_total)`` called after each batch.
    preprocessor : Preprocessor, optional
        Reused to collect the manifest steps; a new one is made from the config if omitted.
    postprocess : bool
        Apply the recalibration maps of the config's ``postprocess`` section (default).
        Group thresholds are never applied.

    Returns
    -------
    ids : list
        Record identifiers, in input order.
    scores : numpy.ndarray
        ``(n_records, n_classes)`` float64 scores after the output activation, window
        aggregation and (if declared and ``postprocess``) recalibration.
    """
    if batch_size < 1:
        raise InputError(f"batch size must be a positive integer, not {batch_size}")
    cfg = model.config
    prep = preprocessor or Preprocessor(cfg)
    agg = cfg.window.aggregate if cfg.window is not None else "max"
    total = n_total if n_total is not None else 0
    ids: list[Any] = []
    out: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    counts: list[int] = []
    n_pending = 0

    def flush() -> None:
        nonlocal n_pending
        if not pending:
            return
        raw = model(np.concatenate(pending))
        if raw.ndim != 2 or raw.shape[1] != len(cfg.classes):
            raise InputError(
                f"model '{model.file_name}' returned shape {tuple(raw.shape)} but the config "
                f"declares {len(cfg.classes)} classes {list(cfg.classes)}"
            )
        bad = ~np.isfinite(raw).all(axis=1)
        if bad.any():
            raise ModelLoadError(
                f"model '{model.file_name}' returned NaN or infinite outputs for "
                f"{int(bad.sum())} of {raw.shape[0]} windows (records {len(out) + 1}.."
                f"{len(out) + len(counts)} of the input); check the weights for NaN/inf and "
                "the preprocessing in the model config"
            )
        probs = _activate(raw, cfg.output_activation)
        start = 0
        for c in counts:
            chunk = probs[start:start + c]
            out.append(chunk.max(axis=0) if agg == "max" else chunk.mean(axis=0))
            start += c
        pending.clear()
        counts.clear()
        n_pending = 0
        if progress is not None:
            progress(len(out), max(total, len(out)))

    with torch.inference_mode():
        for rec in records:
            windows = prep(rec)
            if pending and windows.shape[1:] != pending[0].shape[1:]:
                flush()
            ids.append(rec.record_id)
            pending.append(windows)
            counts.append(windows.shape[0])
            n_pending += windows.shape[0]
            if n_pending >= batch_size:
                flush()
        flush()
    scores = np.vstack(out) if out else np.empty((0, len(cfg.classes)))
    if postprocess:
        scores = apply_postprocess(scores, cfg, source=model.file_name)
    return ids, scores


@dataclass
class Predictions:
    """Predictions table plus the manifest describing how it was made."""

    frame: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)


def _read_metadata(metadata: str | Path, id_col: str, ids: list[Any]) -> pd.DataFrame:
    """Read metadata and check, before any inference, that every ECG has exactly one row."""
    table = read_table(metadata, text_columns=(id_col,))
    meta = table.frame
    if id_col not in meta.columns:
        raise JoinError(
            f"metadata '{table.name}' has no '{id_col}' column (the model config's id_column); "
            f"it has {len(meta.columns)} columns: {visible(list(meta.columns)[:20])}"
        )
    meta_keys = meta[id_col].astype(str)
    if meta_keys.duplicated().any():
        rows = [int(i) + 1 for i in np.flatnonzero(meta_keys.duplicated(keep=False).to_numpy())]
        dup = meta[id_col][meta_keys.duplicated()].tolist()
        raise JoinError(f"metadata '{table.name}', column '{id_col}', rows {format_rows(rows)}: "
                        f"repeated ids ({id_examples(dup)})")
    known = set(meta_keys)
    missing = [i for i in ids if str(i) not in known]
    if missing:
        raise JoinError(
            f"{len(missing)} ECGs have no row in metadata '{table.name}' (column '{id_col}') "
            f"({id_examples(missing)}). Record names must equal the metadata ids."
        )
    wanted = {str(i) for i in ids}
    return meta[meta_keys.isin(wanted)].reset_index(drop=True)


def _join_metadata(frame: pd.DataFrame, meta: pd.DataFrame, id_col: str) -> pd.DataFrame:
    """Metadata rows (in metadata order) followed by the score columns of the same ECG."""
    keys = frame[id_col].astype(str).to_numpy()
    scores = frame.drop(columns=[id_col]).set_axis(keys, axis=0)
    joined = scores.reindex(meta[id_col].astype(str).to_numpy()).reset_index(drop=True)
    dup_cols = [c for c in joined.columns if c in meta.columns]
    return pd.concat([meta, joined.drop(columns=dup_cols)], axis=1)


def predict_detailed(
    model_path: str | Path,
    model_config_path: str | Path,
    ecgs_path: str | Path,
    *,
    batch_size: int = 64,
    device: str = "cpu",
    threads: int | None = None,
    progress: Progress | None = None,
    metadata: str | Path | None = None,
    header_demographics: bool = False,
    ecg_options: dict[str, Any] | None = None,
    postprocess: bool = True,
) -> Predictions:
    """Like :func:`predict`, returning the table and the manifest separately."""
    config: ModelConfig = load_model_config(model_config_path)
    with open_ecgs(ecgs_path, **(ecg_options or {})) as source:
        return _predict_source(source, model_path, config, batch_size=batch_size,
                               device=device, threads=threads, progress=progress,
                               metadata=metadata, header_demographics=header_demographics,
                               postprocess=postprocess)


def _predict_source(
    source: EcgSource, model_path: str | Path, config: ModelConfig, *, batch_size: int,
    device: str, threads: int | None, progress: Progress | None,
    metadata: str | Path | None, header_demographics: bool, postprocess: bool = True,
) -> Predictions:
    meta = (None if metadata is None
            else _read_metadata(metadata, config.id_column, list(source.ids)))
    with torch_threads(threads):
        model = load_model(model_path, config, device=device, threads=threads)
        prep = Preprocessor(config)
        demo: dict[Any, dict[str, Any]] = {}

        def records() -> Iterator[EcgRecord]:
            for rec in source:
                if header_demographics:
                    demo[rec.record_id] = rec.demographics
                yield rec

        ids, scores = run_inference(model, records(), n_total=len(source),
                                    batch_size=batch_size, progress=progress, preprocessor=prep,
                                    postprocess=postprocess)
    frame = pd.DataFrame(scores, columns=config.score_columns)
    frame.insert(0, config.id_column, ids)
    if header_demographics:
        for key in ("age", "sex"):
            frame[key] = [demo[i].get(key) for i in ids]
    n_ecgs = len(frame)
    if meta is not None:
        frame = _join_metadata(frame, meta, config.id_column)
    manifest = {
        "model": model.describe(),
        "model_config": config.to_dict(),
        "ecgs": source.describe(),
        "n_scored": n_ecgs,
        "preprocessing": prep.manifest(),
        "postprocess": postprocess_manifest(config, applied=postprocess),
        "batch_size": batch_size,
        "threads": threads,
        "torch_version": torch.__version__,
    }
    return Predictions(frame=frame, manifest=manifest)


def predict(
    model_path: str | Path,
    model_config_path: str | Path,
    ecgs_path: str | Path,
    *,
    batch_size: int = 64,
    device: str = "cpu",
    threads: int | None = None,
    progress: Progress | None = None,
    metadata: str | Path | None = None,
    header_demographics: bool = False,
    ecg_options: dict[str, Any] | None = None,
    postprocess: bool = True,
) -> pd.DataFrame:
    """Run a model over a collection of ECGs and return the predictions table.

    Parameters
    ----------
    model_path : str or Path
        Weights (safetensors / state dict), TorchScript or ONNX file.
    model_config_path : str or Path
        The model config JSON (see :class:`~ecgaudit.models.ModelConfig`).
    ecgs_path : str or Path
        WFDB folder / ``.hea``, ``.npy`` / ``.npz`` (with index CSV), or ``.h5``.
    batch_size : int
        Windows per forward pass.
    device : str
        ``cpu`` (default), ``cuda``, ``cuda:N`` or ``auto``.
    threads : int, optional
        Torch / ONNX Runtime intra-op threads (default: leave as is).
    progress : callable, optional
        ``progress(n_done, n_total)`` after each batch (the CLI draws a bar with it).
    metadata : str or Path, optional
        CSV/Parquet joined on the id column: its rows for the scored ECGs, plus the scores.
        An ECG without a metadata row is a :class:`~ecgaudit.errors.JoinError`.
    header_demographics : bool
        Add ``age`` and ``sex`` columns parsed from the records (Challenge headers).
    ecg_options : dict, optional
        ``fs``, ``leads``, ``units``, ``index``, ``id_column``, ``layout`` for array files.
    postprocess : bool
        Apply the recalibration maps declared in the config's ``postprocess`` section
        (default; e.g. a model exported by ``ecgaudit finetune --strategy recalibrate``).
        ``False`` gives the raw scores. Group thresholds in that section are never applied
        (they need the protected attribute); the manifest notes them.

    Returns
    -------
    pandas.DataFrame
        The id column (``config.id_column``) and one ``score:<CLASS>`` column per class, in
        input order; ``attrs["ecgaudit_inference"]`` holds the manifest (model file name and
        SHA-256, model config, preprocessing steps applied, post-processing applied and not
        applied, reader, batch size, threads).
    """
    result = predict_detailed(
        model_path, model_config_path, ecgs_path, batch_size=batch_size, device=device,
        threads=threads, progress=progress, metadata=metadata,
        header_demographics=header_demographics, ecg_options=ecg_options,
        postprocess=postprocess,
    )
    result.frame.attrs[MANIFEST_ATTR] = result.manifest
    return result.frame
