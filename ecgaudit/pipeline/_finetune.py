"""``finetune_and_audit``: adapt a model to a site, then prove on held-out patients what changed.

split by patient -> adapt (recalibrate / head / full / thresholds) -> score the held-out
patients with the base and the adapted model -> audit both with the same config -> paired
comparison + no-group-worse gate -> write the adapted model and the audit atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.config import AuditConfig, TaskConfig, parse_config
from ecgaudit.errors import ConfigError, InputError
from ecgaudit.finetune import (
    FinetuneConfig,
    export_site_model,
    library_versions,
    load_finetune_config,
    parse_finetune_config,
    split_digest,
)
from ecgaudit.finetune._data import score_windows
from ecgaudit.io import atomic_write_text, file_sha256, frame_to_csv
from ecgaudit.metrics import calibration_bins
from ecgaudit.models import LoadedModel, ModelConfig, load_model, load_model_config
from ecgaudit.pipeline._audit import audit
from ecgaudit.pipeline._finetunegate import (
    before_after_gate,
    default_policy,
    summarize_before_after,
)
from ecgaudit.pipeline._finetunesteps import Adapted, Site, adapt, split_site, trains
from ecgaudit.policy import Comparison, GateResult, Policy, load_policy
from ecgaudit.reports import write_report
from ecgaudit.reports._beforeafter import write_before_after
from ecgaudit.result import AuditResult, to_jsonable

__all__ = ["FinetuneOutcome", "finetune_and_audit"]

ERR_TASK = "task '{task}' is not an output of the model; its classes: {classes}"
ERR_NOT_TRAINABLE = (
    "strategy '{strategy}' trains the weights, which needs a safetensors or state-dict model "
    "with a sigmoid output (found format '{fmt}', activation '{act}'); use 'recalibrate' or "
    "'thresholds' for this model"
)
ERR_HAS_POSTPROCESS = (
    "model config '{name}' already has a 'postprocess' section (e.g. a model exported by "
    "ecgaudit finetune), so its deployed scores are not its raw scores; fine-tune the parent "
    "model named in that export's manifest.json (parent_model) instead, or remove the "
    "'postprocess' section to adapt from the raw scores"
)


@dataclass
class FinetuneOutcome:
    """Everything a fine-tuning run produced (also written under ``out``)."""

    before: AuditResult
    after: AuditResult
    comparison: Comparison
    gate: GateResult
    summary: dict[str, Any]
    manifest: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """The gate's exit code: 0 pass, 1 a group got worse, 3 inconclusive."""
        return self.gate.exit_code


def _as_config(config: FinetuneConfig | Mapping[str, Any] | str | Path) -> FinetuneConfig:
    if isinstance(config, FinetuneConfig):
        return config
    if isinstance(config, Mapping):
        return parse_finetune_config(dict(config))
    return load_finetune_config(config)


def _audit_config(cfg: FinetuneConfig) -> AuditConfig:
    data = {
        **cfg.audit,
        "tasks": [TaskConfig(name=t, label=cfg.labels[t], score=f"score:{t}").model_dump()
                  for t in cfg.tasks],
        "attributes": {k: v.model_dump() for k, v in cfg.attributes.items()},
        "id_column": cfg.id_column,
        "patient_column": cfg.patient_column,
    }
    return parse_config(data, source="finetune config (audit section)")


def _predictions(frame: pd.DataFrame, scores: np.ndarray, cfg: FinetuneConfig) -> pd.DataFrame:
    cols = [cfg.id_column, cfg.patient_column, *cfg.labels.values(),
            *dict.fromkeys(a.column or k for k, a in cfg.attributes.items())]
    out = frame.loc[:, list(dict.fromkeys(cols))].reset_index(drop=True).copy()
    for j, task in enumerate(cfg.tasks):
        out[f"score:{task}"] = scores[:, j]
    return out


def finetune_and_audit(
    model: str | Path,
    model_config: str | Path,
    ecgs: str | Path,
    metadata: str | Path,
    config: FinetuneConfig | Mapping[str, Any] | str | Path,
    out: str | Path,
    *,
    policy: str | Path | None = None,
    ecg_options: dict[str, Any] | None = None,
    resume: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> FinetuneOutcome:
    """Fine-tune a model on a site's data and audit it before and after on held-out patients.

    Parameters
    ----------
    model, model_config : str or Path
        The parent model file and its JSON config (see :mod:`ecgaudit.models`).
    ecgs : str or Path
        The site's ECGs (any reader of :mod:`ecgaudit.io.waveforms`).
    metadata : str or Path
        One row per site record: id, patient id, labels and the audited attributes.
    config : FinetuneConfig, mapping or path
        The fine-tuning config (``finetune.yaml``).
    out : str or Path
        Output folder: the adapted model, and ``audit/`` with the before/after audit.
    policy : str or Path, optional
        A policy YAML replacing the default no-group-worse rule.
    ecg_options : dict, optional
        Options of array ECG files (``fs``, ``leads``, ``units``, ``index``...).
    resume : bool
        Continue training from the checkpoint in ``out/checkpoints``.
    progress : callable, optional
        Receives training events (see :func:`ecgaudit.finetune.train_model`) and
        ``{"event": "stage", "stage": ...}`` messages.

    Returns
    -------
    FinetuneOutcome

    Raises
    ------
    InputError
        Bad inputs or config, patient leakage, too few positives (before any training).
    """
    cfg = _as_config(config)
    if cfg.strategy in ("federated", "adapt"):  # orchestrated in their own modules
        from ecgaudit.pipeline._adapt import adapt_and_audit
        from ecgaudit.pipeline._federated import federated_and_audit

        run = federated_and_audit if cfg.strategy == "federated" else adapt_and_audit
        return run(model, model_config, ecgs, metadata, cfg, Path(out), policy=policy,
                   ecg_options=ecg_options, resume=resume, progress=progress)
    note = progress or (lambda _e: None)
    out = Path(out)
    mcfg, base, task_index = _load_parent(model, model_config, cfg)
    audit_cfg = _audit_config(cfg)
    note({"event": "stage", "stage": "reading site data"})
    site = split_site(ecgs, metadata, mcfg, cfg, ecg_options)
    note({"event": "stage", "stage": "scoring with the base model"})
    p_base = score_windows(base, site.data.windows)[:, task_index]
    adapted = adapt(cfg, site, base, mcfg, p_base, task_index, audit_cfg, out, resume, progress)
    note({"event": "stage", "stage": "auditing before and after"})
    run = _before_after(cfg, site, p_base, adapted, audit_cfg, policy)
    manifest = _manifest(cfg, site, base, model_config, adapted, run)
    paths = _write_outputs(out, cfg, site, base, mcfg, p_base, adapted, run, manifest,
                           audit_cfg.min_cell_size)
    return FinetuneOutcome(before=run.before, after=run.after, comparison=run.comparison,
                           gate=run.gate, summary=run.summary, manifest=manifest, paths=paths)


@dataclass
class _BeforeAfter:
    """Both audits, the policy, the paired comparison, its gate and the summary."""

    before: AuditResult
    after: AuditResult
    policy: Policy
    comparison: Comparison
    gate: GateResult
    summary: dict[str, Any]


def _load_parent(model: str | Path, model_config: str | Path, cfg: FinetuneConfig
                 ) -> tuple[ModelConfig, LoadedModel, list[int]]:
    """Load the parent model and check it can be adapted by the configured strategy."""
    mcfg = load_model_config(model_config)
    if mcfg.postprocess is not None:
        raise ConfigError(ERR_HAS_POSTPROCESS.format(name=Path(model_config).name))
    missing = [t for t in cfg.tasks if t not in mcfg.classes]
    if missing:
        raise ConfigError(ERR_TASK.format(task=missing[0], classes=list(mcfg.classes)))
    task_index = [mcfg.classes.index(t) for t in cfg.tasks]
    device = "cpu" if cfg.training.device == "cpu" else cfg.training.device
    base = load_model(model, mcfg, device=device)
    if trains(cfg) and (base.module is None
                         or base.format not in ("safetensors", "state_dict")
                         or mcfg.output_activation != "sigmoid"):
        raise InputError(ERR_NOT_TRAINABLE.format(strategy=cfg.strategy, fmt=base.format,
                                                  act=mcfg.output_activation))
    return mcfg, base, task_index


def _before_after(cfg: FinetuneConfig, site: Site, p_base: np.ndarray, adapted: Adapted,
                  audit_cfg: AuditConfig, policy: str | Path | None) -> _BeforeAfter:
    """Audit both models on the held-out patients, compare them paired and gate."""
    test = site.test
    before_frame = _predictions(site.frame[test], p_base[test], cfg)
    after_frame = _predictions(site.frame[test], adapted.p_after[test], cfg)
    before = audit(before_frame, audit_cfg)
    after = audit(after_frame, audit_cfg)
    pol = load_policy(policy, after) if policy is not None else default_policy(cfg)
    comparison, gate = before_after_gate(before_frame, after_frame, after, audit_cfg, pol,
                                         n_boot=cfg.gate.n_boot, seed=cfg.split.seed)
    summary = summarize_before_after(before, after, comparison, cfg.gate_metric)
    if cfg.strategy == "thresholds":
        costs = adapted.training["threshold_cost"]
        summary["warning"] = next(iter(costs.values()))["warning"]
        summary["uses_protected_attribute"] = True
        summary["threshold_cost"] = {t: {**c["overall"], "cost": c["cost"]}
                                     for t, c in costs.items()}
    return _BeforeAfter(before=before, after=after, policy=pol, comparison=comparison,
                        gate=gate, summary=summary)


def _manifest(cfg: FinetuneConfig, site: Site, base: LoadedModel, model_config: str | Path,
              adapted: Adapted, run: _BeforeAfter) -> dict[str, Any]:
    """Return the export's provenance: parent, data, split digests, strategy, training, gate."""
    frame, split = site.frame, site.split
    ids = frame[cfg.id_column].astype(str)
    data = site.data
    return {
        "tool": "ecgaudit finetune",
        "parent_model": {"file": base.file_name, "sha256": base.sha256, "format": base.format,
                         "config_file": Path(model_config).name,
                         "config_sha256": file_sha256(model_config)},
        "data": {"metadata": {"name": data.metadata_name, "sha256": data.metadata_sha256,
                              "rows": len(frame)},
                 "ecgs": data.ecgs, "input_windows_sha256": data.windows_sha256,
                 "preprocessing": data.preprocessing},
        "split": {"seed": split.seed, "fractions": [cfg.split.train, cfg.split.val,
                                                    cfg.split.test],
                  "stratify": list(cfg.split.stratify), "strata": split.strata,
                  "patients": split.n_patients,
                  "records": {s: int(split.mask(s).sum()) for s in ("train", "val", "test")},
                  "positives": site.positives,
                  "record_ids_sha256": {s: split_digest(ids[split.mask(s)].tolist())
                                        for s in ("train", "val", "test")}},
        "strategy": cfg.strategy,
        "tasks": list(cfg.tasks),
        "config": cfg.to_dict(),
        "training": adapted.training,
        "gate": {"policy": run.policy.name, "status": run.gate.status,
                 "exit_code": run.gate.exit_code},
        "versions": library_versions(),
    }


def _write_outputs(out: Path, cfg: FinetuneConfig, site: Site, base: LoadedModel,
                   mcfg: ModelConfig, p_base: np.ndarray, adapted: Adapted,
                   run: _BeforeAfter, manifest: dict[str, Any], min_cell: int
                   ) -> dict[str, Path]:
    """Export the model, the split, both audits, the comparison, the page and the report."""
    frame, test, y = site.frame, site.test, site.y
    paths = export_site_model(out, state_dict=adapted.state, model_config=mcfg.to_dict(),
                              manifest=manifest, postprocess=adapted.postprocess or None)
    split_csv = pd.DataFrame({cfg.id_column: frame[cfg.id_column], "split": site.split.split})
    paths["split"] = atomic_write_text(out / "split.csv", frame_to_csv(split_csv))
    adir = out / "audit"
    for name, res_ in (("before", run.before), ("after", run.after)):
        for role, p in res_.save(adir / name).items():
            paths[f"{name}_{role}"] = p
    dumps = {"comparison.json": run.comparison.to_dict(), "gate.json": run.gate.to_dict(),
             "summary.json": run.summary}
    for fname, data in dumps.items():
        paths[fname] = atomic_write_text(
            adir / fname, json.dumps(to_jsonable(data), sort_keys=True, indent=1,
                                     allow_nan=False) + "\n")
    paths["comparison.csv"] = atomic_write_text(
        adir / "comparison.csv", frame_to_csv(run.comparison.table))
    calib = None
    if cfg.strategy != "thresholds":  # after-scores of 'thresholds' are decisions, not risks
        calib = {t: {"before": calibration_bins(p_base[test, j], y[test, j], min_cell=min_cell),
                     "after": calibration_bins(adapted.p_after[test, j], y[test, j],
                                               min_cell=min_cell)}
                 for j, t in enumerate(cfg.tasks)}
    paths["before_after.html"] = write_before_after(
        adir / "before_after.html", strategy=cfg.strategy, parent=base.file_name,
        summary=run.summary, comparison=run.comparison, gate=run.gate, calibration=calib)
    metric = cfg.gate_metric
    compare_view = {"title": f"Before/after fine-tuning ({cfg.strategy}): change in {metric}",
                    "summary": {"strategy": cfg.strategy, "gate": run.gate.status,
                                "warning": run.summary.get("warning") or ""},
                    "rows": run.summary["groups"]}
    paths["report.html"] = write_report(run.after, adir / "report.html",
                                        gate=run.gate.to_dict(), compare=compare_view)
    return paths
