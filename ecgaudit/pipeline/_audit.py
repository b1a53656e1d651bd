"""``audit``: from predictions and demographics to an :class:`AuditResult`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import Cohort, Grouping, build_cohort, narrow_codes
from ecgaudit.config import AuditConfig, load_config, parse_config
from ecgaudit.disparity import compare_many
from ecgaudit.io import InputTable, read_table
from ecgaudit.metrics import (
    BootGrouping,
    MetricSession,
    PointEstimates,
    TaskArrays,
    threshold_from_spec,
)
from ecgaudit.pipeline._bootstrap import bootstrap_step, choose_bins
from ecgaudit.pipeline._continuous import (
    add_continuous,
    binary_part,
    continuous_extras,
    no_binary_tasks,
)
from ecgaudit.pipeline._extras import build_extras
from ecgaudit.pipeline._finish import Tail, finish_audit, point_tables
from ecgaudit.pipeline._framehash import frame_row_hashes
from ecgaudit.pipeline._progress import ProgressCallback, Steps, audit_steps
from ecgaudit.pipeline._survival import (  # mixed configs: survival rows appended
    add_survival,
    is_survival,
    run_survival,
    survival_extras,
    without_survival,
)
from ecgaudit.pipeline._views import build_views
from ecgaudit.privacy import SuppressionPlan, suppress_cohort, suppress_extras
from ecgaudit.result import AuditResult
from ecgaudit.validate import prepare

__all__ = ["audit", "audit_files", "audit_model"]

SURVIVAL_STEP = "bootstrap: {b} replicates (exact; survival tasks have no binned mode)"


def _frame_table(frame: pd.DataFrame, name: str) -> InputTable:
    digest = hashlib.sha256(
        frame_row_hashes(frame).tobytes()  # hash_pandas_object(frame, index=False)
        + "\x1f".join(map(str, frame.columns)).encode()
    ).hexdigest()
    return InputTable(frame=frame.reset_index(drop=True), name=name, sha256=digest)


def _as_config(config: AuditConfig | Mapping[str, Any] | str | Path) -> AuditConfig:
    if isinstance(config, AuditConfig):
        return config
    if isinstance(config, Mapping):
        return parse_config(dict(config))
    return load_config(config)


def _thresholds(frame: pd.DataFrame, config: AuditConfig) -> dict[str, dict[str, Any]]:
    out = {}
    for task in config.tasks:
        spec = config.threshold_for(task.name)
        y = frame[f"y:{task.name}"].to_numpy()
        p = frame[f"p:{task.name}"].to_numpy()
        value, derived_on = threshold_from_spec(y, p, spec, frame)
        out[task.name] = {"value": value, "rule": spec.rule, "target": spec.target,
                          "derived_on": derived_on}
    return out


def _units(grouping: Grouping, patients: np.ndarray | None) -> np.ndarray:
    if patients is None:
        return grouping.sizes()
    n_patients = int(patients.max()) + 1 if patients.size else 1
    pairs = np.unique(np.asarray(grouping.codes, dtype=np.int64) * n_patients + patients)
    return np.bincount(pairs // n_patients, minlength=len(grouping.groups))


def _task_arrays(frame: pd.DataFrame, config: AuditConfig,
                 thresholds: dict[str, dict[str, Any]]) -> list[TaskArrays]:
    return [TaskArrays(t.name, frame[f"y:{t.name}"].to_numpy(np.int8),
                       frame[f"p:{t.name}"].to_numpy(np.float64),
                       float(thresholds[t.name]["value"])) for t in config.tasks]


def _groupings(cohort: Cohort) -> list[BootGrouping]:
    return [BootGrouping(g.attribute, g.codes, g.groups, g.reference) for g in cohort.groupings]


def _compute(frame: pd.DataFrame, cohort: Cohort, config: AuditConfig,
             thresholds: dict[str, dict[str, Any]], patients: np.ndarray | None
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], MetricSession,
                        PointEstimates]:
    session = MetricSession(
        _task_arrays(frame, config, thresholds), _groupings(cohort), patient=patients,
        seed=config.seed, engine=config.engine,
        bins=choose_bins(config, len(frame), len(config.tasks))["bins"],
        clip=config.calibration.clip, ece_bins=config.calibration.ece_bins)
    points = session.point_estimates(level=config.ci_level, min_events=config.min_events)
    metric_rows, disp_rows = _point_rows(cohort, config, points)
    return metric_rows, disp_rows, session, points


def _point_rows(cohort: Cohort, config: AuditConfig, points: PointEstimates
                ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Metric and disparity rows (closed-form intervals) of the point estimates."""
    metric_rows: list[dict[str, Any]] = []
    disp_rows: list[dict[str, Any]] = []
    keys: list[tuple[str, str, str, str]] = []
    pairs: list[tuple[Any, Any]] = []
    level = config.ci_level
    for task, per_task in zip(config.tasks, points.stats):
        for g, stats in zip(cohort.groupings, per_task):
            for name, s in zip(g.groups, stats):
                for metric, v in s.values.items():
                    metric_rows.append({
                        "task": task.name, "attribute": g.attribute, "group": name,
                        "metric": metric, "estimate": v.estimate, "ci_low": v.ci_low,
                        "ci_high": v.ci_high, "ci_method": v.ci_method, "n": s.n,
                        "n_pos": s.n_pos, "status": v.status, "reason": v.reason,
                    })
            if g.reference is None:
                continue
            ref = stats[g.reference]
            for i, name in enumerate(g.groups):
                if i != g.reference:
                    keys.append((task.name, g.attribute, name, g.groups[g.reference]))
                    pairs.append((stats[i], ref))
    for (task_name, attribute, name, reference), rows in zip(keys, compare_many(pairs, level)):
        disp_rows += [{"task": task_name, "attribute": attribute, "group": name,
                       "reference": reference, **row} for row in rows]
    return metric_rows, disp_rows


def _cohort_rows(frame: pd.DataFrame, cohort: Cohort, config: AuditConfig,
                 units: dict[str, np.ndarray], plan: SuppressionPlan) -> list[dict[str, Any]]:
    rows = []
    positives = {t.name: np.flatnonzero(frame[f"y:{t.name}"].to_numpy() == 1)
                 for t in config.tasks}
    for g in cohort.groupings:
        sizes = g.sizes()
        events = {t: np.bincount(g.codes[pos], minlength=len(g.groups))
                  for t, pos in positives.items()}
        for i, name in enumerate(g.groups):
            rows.append({
                "attribute": g.attribute, "group": name, "n": int(sizes[i]),
                "n_patients": int(units[g.attribute][i]),
                "n_pos_by_task": {t: int(e[i]) for t, e in events.items()},
                "is_reference": g.reference == i,
            })
    return suppress_cohort(rows, plan)


def _run(inputs: list[tuple[str, InputTable]], config: AuditConfig,
         metadata: InputTable | None, provenance: dict[str, Any] | None = None,
         steps: Steps | None = None,
         replicates: Callable[[MetricSession], Any] | None = None) -> AuditResult:
    steps = steps or Steps(None, [])
    predictions = inputs[0][1]
    steps.next()
    prepared = prepare(predictions, config, metadata)
    frame = prepared.frame
    steps.relabel("bootstrap:", SURVIVAL_STEP.format(b=config.bootstrap)
                  if any(t.kind == "survival" for t in config.tasks)
                  else bootstrap_step(config, len(frame), len(binary_part(config).tasks)))
    steps.next()
    cohort = build_cohort(frame, config)
    if replicates is not None:  # pooled summaries (10^7+ pseudo-rows): 1-2-byte codes
        cohort = narrow_codes(cohort)
    steps.next()
    if is_survival(config):  # time-to-event tasks: pipeline/_survival.py
        result = run_survival(prepared, cohort, config, inputs, provenance)
        steps.done()
        return result
    full_config, config = config, binary_part(without_survival(config))  # continuous, survival
    thresholds = _thresholds(frame, config)
    patients = (frame[config.patient_column].astype(str).to_numpy()
                if config.patient_column else None)
    if patients is not None:
        _, patients = np.unique(patients, return_inverse=True)
    units = {g.attribute: _units(g, patients) for g in cohort.groupings}
    if config.tasks:
        metric_rows, disp_rows, session, points = _compute(frame, cohort, config, thresholds,
                                                           patients)
        if replicates is not None:  # bootstrap replicates given as cells (summaries)
            session.evaluator = replicates(session)
    else:  # continuous tasks only (pipeline/_continuous.py): no binary session to build
        metric_rows, disp_rows, session, points = no_binary_tasks()
    metrics, disparities, ranking = point_tables(metric_rows, disp_rows, points, session,
                                                 config, steps)
    metrics, disparities = add_continuous(metrics, disparities, frame, cohort, full_config,
                                          patients)
    metrics, disparities, surv_cells = add_survival(metrics, disparities, frame, cohort,
                                                    full_config, patients)
    tail = Tail(
        inputs=[{"role": role, "name": t.name, "sha256": t.sha256, "rows": len(t.frame)}
                for role, t in inputs],
        provenance={"n_ecgs": len(frame),
                    "n_patients": int(patients.max() + 1) if patients is not None else None,
                    "n_unmatched_metadata": prepared.n_unmatched_metadata,
                    "bootstrap_bins": choose_bins(config, len(frame), len(config.tasks)),
                    **(provenance or {})},
        cohort_rows=lambda plan: _cohort_rows(frame, cohort, config, units, plan),
        extras=lambda suppressed, plan: {
            **suppress_extras(build_extras(frame, cohort, config, units, points, ranking),
                              plan),
            **continuous_extras(frame, cohort, full_config, units),
            **build_views(frame, cohort, config, thresholds, patients, units, suppressed),
            **survival_extras(surv_cells, frame, cohort, full_config, plan)})
    return finish_audit(metrics, disparities, tail, cohort=cohort, config=config,
                        full_config=full_config, units=units, thresholds=thresholds,
                        steps=steps)


def audit(data: pd.DataFrame, config: AuditConfig | Mapping[str, Any] | str | Path, *,
          metadata: pd.DataFrame | None = None,
          progress: ProgressCallback | None = None) -> AuditResult:
    """Audit predictions held in memory.

    Parameters
    ----------
    data : pandas.DataFrame
        Predictions with labels (and demographics, unless ``metadata`` is given).
    config : AuditConfig, mapping or path
        The audit configuration (an object, plain data, or a YAML file).
    metadata : pandas.DataFrame, optional
        Demographics, joined one-to-one on ``config.id_column``.
    progress : callable, optional
        ``progress(step, index, total)`` as each step starts (``"done"`` at the end).

    Returns
    -------
    AuditResult
        ``result.metrics`` and ``result.disparities`` are tidy DataFrames;
        ``result.save(dir)`` writes them with a manifest.

    Raises
    ------
    ecgaudit.errors.InputError
        For invalid config or data (every problem listed).
    """
    cfg = _as_config(config)
    inputs = [("predictions", _frame_table(data, "<predictions DataFrame>"))]
    meta = None
    if metadata is not None:
        meta = _frame_table(metadata, "<metadata DataFrame>")
        inputs.append(("metadata", meta))
    steps = Steps(progress, audit_steps(bootstrap=cfg.bootstrap, read_files=False))
    return _run(inputs, cfg, meta, steps=steps)


def audit_files(predictions: str | Path, config: AuditConfig | Mapping[str, Any] | str | Path,
                *, metadata: str | Path | None = None,
                progress: ProgressCallback | None = None) -> AuditResult:
    """Audit predictions stored in CSV/Parquet files.

    Parameters
    ----------
    predictions : str or Path
        Predictions file (CSV, CSV.gz, TSV or Parquet).
    config : AuditConfig, mapping or path
        The audit configuration.
    metadata : str or Path, optional
        Demographics file joined on ``config.id_column``.
    progress : callable, optional
        ``progress(step, index, total)`` as each step starts (``"done"`` at the end).

    Returns
    -------
    AuditResult
        The result; input files are identified by base name and SHA-256 in the manifest.
    """
    cfg = _as_config(config)
    steps = Steps(progress, audit_steps(bootstrap=cfg.bootstrap, read_files=True))
    steps.next()
    ids = (cfg.id_column, cfg.patient_column)  # identifiers are read as text
    pred = read_table(predictions, text_columns=ids)
    inputs = [("predictions", pred)]
    meta = None
    if metadata is not None:
        meta = read_table(metadata, text_columns=ids)
        inputs.append(("metadata", meta))
    return _run(inputs, cfg, meta, steps=steps)


def audit_model(model: str | Path, model_config: str | Path, ecgs: str | Path,
                config: AuditConfig | Mapping[str, Any] | str | Path, *,
                metadata: str | Path | None = None, batch_size: int = 64,
                device: str = "cpu", threads: int | None = None,
                progress: Callable[[int, int], None] | None = None,
                header_demographics: bool = False,
                steps: ProgressCallback | None = None) -> AuditResult:
    """Score ECG waveforms with a model, then audit the predictions.

    Equivalent to ``ecgaudit predict`` followed by ``ecgaudit audit`` on its output; the
    inference manifest (model hash, reader, preprocessing steps) is stored in the result
    manifest under ``inference``.

    Parameters
    ----------
    model, model_config : str or Path
        Weights (safetensors / state dict / TorchScript / ONNX) and the model config JSON.
    ecgs : str or Path
        WFDB folder, ``.npy``/``.npz`` array file or CODE-15% HDF5 file.
    config : AuditConfig, mapping or path
        The audit configuration (task scores are the ``score:<CLASS>`` columns).
    metadata : str or Path, optional
        Labels and demographics joined on the id column.
    batch_size, device, threads : optional
        Inference settings.
    progress : callable, optional
        ``progress(done, total)`` after every batch.
    header_demographics : bool
        Take age and sex from the record headers (PhysioNet Challenge format).
    steps : callable, optional
        ``steps(step, index, total)`` as each audit step starts, as ``progress`` of
        :func:`audit`.

    Returns
    -------
    AuditResult
    """
    from ecgaudit.models import predict  # torch is imported only on this path

    cfg = _as_config(config)
    frame = predict(model, model_config, ecgs, batch_size=batch_size, device=device,
                    threads=threads, progress=progress, metadata=metadata,
                    header_demographics=header_demographics)
    inference = frame.attrs.get("ecgaudit_inference", {})
    frame = frame.copy()
    frame.attrs = {}
    table = _frame_table(frame, "<model predictions>")
    inputs: list[tuple[str, InputTable]] = [("predictions", table)]
    if metadata is not None:
        inputs.append(("metadata", read_table(
            metadata, text_columns=(cfg.id_column, cfg.patient_column))))
    return _run(inputs, cfg, None, provenance={"inference": inference},
                steps=Steps(steps, audit_steps(bootstrap=cfg.bootstrap, read_files=False)))
