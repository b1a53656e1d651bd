"""``finetune_and_audit``: adapt a model to a site, then prove on held-out patients what changed.

split by patient -> adapt (recalibrate / head / full / thresholds) -> score the held-out
patients with the base and the adapted model -> audit both with the same config -> paired
comparison + no-group-worse gate -> write the adapted model and the audit atomically.
"""

from __future__ import annotations

import copy
import dataclasses
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
    attribute_groups,
    check_no_overlap,
    check_positives,
    combined_groups,
    export_site_model,
    fit_group_thresholds,
    library_versions,
    load_finetune_config,
    parse_finetune_config,
    recalibrate,
    split_digest,
    split_patients,
    threshold_cost,
    train_model,
)
from ecgaudit.finetune._data import load_site_data, score_windows
from ecgaudit.io import atomic_write_text, file_sha256, frame_to_csv
from ecgaudit.metrics import calibration_bins
from ecgaudit.models import load_model, load_model_config
from ecgaudit.pipeline._audit import audit
from ecgaudit.pipeline._finetunegate import (
    before_after_gate,
    default_policy,
    summarize_before_after,
)
from ecgaudit.policy import Comparison, GateResult, load_policy
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
    mcfg = load_model_config(model_config)
    if mcfg.postprocess is not None:
        raise ConfigError(ERR_HAS_POSTPROCESS.format(name=Path(model_config).name))
    missing = [t for t in cfg.tasks if t not in mcfg.classes]
    if missing:
        raise ConfigError(ERR_TASK.format(task=missing[0], classes=list(mcfg.classes)))
    task_index = [mcfg.classes.index(t) for t in cfg.tasks]
    device = "cpu" if cfg.training.device == "cpu" else cfg.training.device
    base = load_model(model, mcfg, device=device)
    trains = cfg.strategy in ("head", "full")
    if trains and (base.module is None or base.format not in ("safetensors", "state_dict")
                   or mcfg.output_activation != "sigmoid"):
        raise InputError(ERR_NOT_TRAINABLE.format(strategy=cfg.strategy, fmt=base.format,
                                                  act=mcfg.output_activation))
    audit_cfg = _audit_config(cfg)
    note({"event": "stage", "stage": "reading site data"})
    site = load_site_data(ecgs, metadata, mcfg, cfg, ecg_options=ecg_options)
    frame = site.frame
    strata = {a: attribute_groups(frame, a, cfg.attributes[a]) for a in cfg.split.stratify}
    split = split_patients(frame, patient_column=cfg.patient_column,
                           label_columns=list(cfg.labels.values()), strata=strata,
                           fractions=(cfg.split.train, cfg.split.val, cfg.split.test),
                           seed=cfg.split.seed)
    fit_mask = split.mask("train") if trains else split.mask("train") | split.mask("val")
    test = split.mask("test")
    check_no_overlap(frame[fit_mask | split.mask("val")], frame[test], id_column=cfg.id_column,
                     patient_column=cfg.patient_column, finetune_name="fine-tuning split",
                     audit_name="held-out audit split")
    mp = cfg.min_positives
    positives = check_positives(frame, split, cfg.labels,
                                {"train": mp.train, "val": mp.val if trains else 0,
                                 "test": mp.test})
    y = frame.loc[:, list(cfg.labels.values())].to_numpy(dtype=np.float32)
    note({"event": "stage", "stage": "scoring with the base model"})
    p_base = score_windows(base, site.windows)[:, task_index]
    state = {k: v.detach().cpu() for k, v in base.module.state_dict().items()} \
        if base.module is not None else {}
    postprocess: dict[str, Any] = {}
    training: dict[str, Any] = {}
    p_after = p_base.copy()
    if cfg.strategy == "recalibrate":
        recs = {t: recalibrate(p_base[fit_mask, j], y[fit_mask, j], cfg.recalibration.method)
                for j, t in enumerate(cfg.tasks)}
        for j, t in enumerate(cfg.tasks):
            p_after[:, j] = recs[t].transform(p_base[:, j])
        postprocess["recalibration"] = {t: r.to_dict() for t, r in recs.items()}
    elif cfg.strategy == "thresholds":
        attr = cfg.threshold_attribute
        assert attr is not None
        groups = attribute_groups(frame, attr, cfg.attributes[attr])
        single = float(audit_cfg.threshold.value if audit_cfg.threshold.value is not None
                       else 0.5)
        rules, costs = {}, {}
        for j, t in enumerate(cfg.tasks):
            rule = fit_group_thresholds(
                p_base[fit_mask, j], y[fit_mask, j], groups[fit_mask], attribute=attr,
                constraint=cfg.thresholds.constraint, objective=cfg.thresholds.objective,
                grid_size=cfg.thresholds.grid_size)
            rules[t] = rule.to_dict()
            costs[t] = threshold_cost(p_base[test, j], y[test, j], groups[test], rule, single)
            # after-scores are the rule's (seeded) decisions, audited at the same threshold
            decision = rule.predict(p_base[:, j], groups, seed=cfg.split.seed + j)
            p_after[:, j] = np.where(decision == 1, 1.0, 0.0)
        postprocess["group_thresholds"] = rules
        training = {"threshold_cost": costs}
    else:
        module = copy.deepcopy(base.module)
        assert module is not None
        gtrain = None
        if cfg.training.sampling == "group_balanced" or cfg.training.group_dro:
            names = cfg.training.group_attributes or tuple(cfg.attributes)
            gtrain = combined_groups(frame[fit_mask], {a: cfg.attributes[a] for a in names})
        note({"event": "stage", "stage": f"training ({cfg.strategy})"})
        res = train_model(
            module, site.windows[fit_mask], y[fit_mask], site.windows[split.mask("val")],
            y[split.mask("val")], strategy=cfg.strategy,  # type: ignore[arg-type]
            config=cfg.training, task_index=task_index, groups_train=gtrain,
            aggregate=mcfg.window.aggregate if mcfg.window is not None else "max",
            checkpoint_dir=out / "checkpoints", resume=resume, progress=progress)
        state = res.state_dict
        adapted = dataclasses.replace(base, module=module.to(base.device).eval())
        p_after = score_windows(adapted, site.windows)[:, task_index]
        training = {"history": res.history, "initial_val": res.initial_val,
                    "best_epoch": res.best_epoch,
                    "stopped_early": res.stopped_early, "trainable_parameters": res.trainable,
                    "group_dro_weights": res.group_weights}
    note({"event": "stage", "stage": "auditing before and after"})
    before_frame = _predictions(frame[test], p_base[test], cfg)
    after_frame = _predictions(frame[test], p_after[test], cfg)
    before = audit(before_frame, audit_cfg)
    after = audit(after_frame, audit_cfg)
    pol = load_policy(policy, after) if policy is not None else default_policy(cfg)
    comparison, gate = before_after_gate(before_frame, after_frame, after, audit_cfg, pol,
                                         n_boot=cfg.gate.n_boot, seed=cfg.split.seed)
    metric = cfg.gate_metric
    summary = summarize_before_after(before, after, comparison, metric)
    if cfg.strategy == "thresholds":
        costs = training["threshold_cost"]
        summary["warning"] = next(iter(costs.values()))["warning"]
        summary["uses_protected_attribute"] = True
        summary["threshold_cost"] = {t: {**c["overall"], "cost": c["cost"]}
                                     for t, c in costs.items()}
    ids = frame[cfg.id_column].astype(str)
    manifest = {
        "tool": "ecgaudit finetune",
        "parent_model": {"file": base.file_name, "sha256": base.sha256, "format": base.format,
                         "config_file": Path(model_config).name,
                         "config_sha256": file_sha256(model_config)},
        "data": {"metadata": {"name": site.metadata_name, "sha256": site.metadata_sha256,
                              "rows": len(frame)},
                 "ecgs": site.ecgs, "input_windows_sha256": site.windows_sha256,
                 "preprocessing": site.preprocessing},
        "split": {"seed": split.seed, "fractions": [cfg.split.train, cfg.split.val,
                                                    cfg.split.test],
                  "stratify": list(cfg.split.stratify), "strata": split.strata,
                  "patients": split.n_patients,
                  "records": {s: int(split.mask(s).sum()) for s in ("train", "val", "test")},
                  "positives": positives,
                  "record_ids_sha256": {s: split_digest(ids[split.mask(s)].tolist())
                                        for s in ("train", "val", "test")}},
        "strategy": cfg.strategy,
        "tasks": list(cfg.tasks),
        "config": cfg.to_dict(),
        "training": training,
        "gate": {"policy": pol.name, "status": gate.status, "exit_code": gate.exit_code},
        "versions": library_versions(),
    }
    paths = export_site_model(out, state_dict=state, model_config=mcfg.to_dict(),
                              manifest=manifest, postprocess=postprocess or None)
    split_csv = pd.DataFrame({cfg.id_column: frame[cfg.id_column], "split": split.split})
    paths["split"] = atomic_write_text(out / "split.csv", frame_to_csv(split_csv))
    adir = out / "audit"
    for name, res_ in (("before", before), ("after", after)):
        for role, p in res_.save(adir / name).items():
            paths[f"{name}_{role}"] = p
    dumps = {"comparison.json": comparison.to_dict(), "gate.json": gate.to_dict(),
             "summary.json": summary}
    for fname, data in dumps.items():
        paths[fname] = atomic_write_text(
            adir / fname, json.dumps(to_jsonable(data), sort_keys=True, indent=1,
                                     allow_nan=False) + "\n")
    paths["comparison.csv"] = atomic_write_text(
        adir / "comparison.csv", frame_to_csv(comparison.table))
    calib = None
    if cfg.strategy != "thresholds":  # after-scores of 'thresholds' are decisions, not risks
        calib = {t: {"before": calibration_bins(p_base[test, j], y[test, j],
                                                min_cell=audit_cfg.min_cell_size),
                     "after": calibration_bins(p_after[test, j], y[test, j],
                                               min_cell=audit_cfg.min_cell_size)}
                 for j, t in enumerate(cfg.tasks)}
    paths["before_after.html"] = write_before_after(
        adir / "before_after.html", strategy=cfg.strategy, parent=base.file_name,
        summary=summary, comparison=comparison, gate=gate, calibration=calib)
    compare_view = {"title": f"Before/after fine-tuning ({cfg.strategy}): change in {metric}",
                    "summary": {"strategy": cfg.strategy, "gate": gate.status,
                                "warning": summary.get("warning") or ""},
                    "rows": summary["groups"]}
    paths["report.html"] = write_report(after, adir / "report.html", gate=gate.to_dict(),
                                        compare=compare_view)
    return FinetuneOutcome(before=before, after=after, comparison=comparison, gate=gate,
                           summary=summary, manifest=manifest, paths=paths)
