"""Fine-tuning's named steps: split the site's patients, then adapt by the strategy.

:func:`ecgaudit.pipeline.finetune_and_audit` runs them in order (then audits before/after).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.config import AuditConfig
from ecgaudit.finetune import (
    FinetuneConfig,
    PatientSplit,
    attribute_groups,
    check_no_overlap,
    check_positives,
    combined_groups,
    fit_group_thresholds,
    recalibrate,
    split_patients,
    threshold_cost,
    train_model,
)
from ecgaudit.finetune._data import SiteData, load_site_data, score_windows
from ecgaudit.models import LoadedModel, ModelConfig

__all__ = ["Adapted", "Site", "adapt", "split_site", "trains"]


@dataclass
class Site:
    """The site's records, their patient split and the label matrix."""

    data: SiteData
    split: PatientSplit
    fit: np.ndarray
    test: np.ndarray
    positives: dict[str, Any]
    y: np.ndarray

    @property
    def frame(self) -> pd.DataFrame:
        return self.data.frame


@dataclass
class Adapted:
    """The adapted model's held-out scores and what the export records about it."""

    p_after: np.ndarray
    state: dict[str, Any]
    postprocess: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)


def trains(cfg: FinetuneConfig) -> bool:
    """Whether the strategy trains the weights (head or full)."""
    return cfg.strategy in ("head", "full")


def split_site(ecgs: str | Path, metadata: str | Path, mcfg: ModelConfig, cfg: FinetuneConfig,
                ecg_options: dict[str, Any] | None) -> Site:
    """Read the site, split its patients, check leakage and positives (before any training)."""
    site = load_site_data(ecgs, metadata, mcfg, cfg, ecg_options=ecg_options)
    frame = site.frame
    strata = {a: attribute_groups(frame, a, cfg.attributes[a]) for a in cfg.split.stratify}
    split = split_patients(frame, patient_column=cfg.patient_column,
                           label_columns=list(cfg.labels.values()), strata=strata,
                           fractions=(cfg.split.train, cfg.split.val, cfg.split.test),
                           seed=cfg.split.seed)
    fits_weights = trains(cfg)
    fit_mask = split.mask("train") if fits_weights else split.mask("train") | split.mask("val")
    test = split.mask("test")
    check_no_overlap(frame[fit_mask | split.mask("val")], frame[test], id_column=cfg.id_column,
                     patient_column=cfg.patient_column, finetune_name="fine-tuning split",
                     audit_name="held-out audit split")
    mp = cfg.min_positives
    positives = check_positives(frame, split, cfg.labels,
                                {"train": mp.train, "val": mp.val if fits_weights else 0,
                                 "test": mp.test})
    y = frame.loc[:, list(cfg.labels.values())].to_numpy(dtype=np.float32)
    return Site(data=site, split=split, fit=fit_mask, test=test, positives=positives, y=y)


def adapt(cfg: FinetuneConfig, site: Site, base: LoadedModel, mcfg: ModelConfig,
           p_base: np.ndarray, task_index: list[int], audit_cfg: AuditConfig, out: Path,
           resume: bool, progress: Callable[[dict[str, Any]], None] | None) -> Adapted:
    """Run the strategy: recalibrate, group thresholds, or train (head / full)."""
    state = {k: v.detach().cpu() for k, v in base.module.state_dict().items()} \
        if base.module is not None else {}
    if cfg.strategy == "recalibrate":
        return _recalibrated(cfg, site, p_base, state)
    if cfg.strategy == "thresholds":
        return _group_thresholds(cfg, site, p_base, audit_cfg, state)
    return _trained(cfg, site, base, mcfg, task_index, out, resume, progress)


def _recalibrated(cfg: FinetuneConfig, site: Site, p_base: np.ndarray,
                  state: dict[str, Any]) -> Adapted:
    """Fit a recalibration map per task on the fit rows; the weights stay the parent's."""
    y, fit = site.y, site.fit
    p_after = p_base.copy()
    recs = {t: recalibrate(p_base[fit, j], y[fit, j], cfg.recalibration.method)
            for j, t in enumerate(cfg.tasks)}
    for j, t in enumerate(cfg.tasks):
        p_after[:, j] = recs[t].transform(p_base[:, j])
    return Adapted(p_after=p_after, state=state,
                    postprocess={"recalibration": {t: r.to_dict() for t, r in recs.items()}})


def _group_thresholds(cfg: FinetuneConfig, site: Site, p_base: np.ndarray,
                      audit_cfg: AuditConfig, state: dict[str, Any]) -> Adapted:
    """Fit per-group thresholds; after-scores are the rule's (seeded) 0/1 decisions."""
    y, fit, test = site.y, site.fit, site.test
    attr = cfg.threshold_attribute
    assert attr is not None
    groups = attribute_groups(site.frame, attr, cfg.attributes[attr])
    single = float(audit_cfg.threshold.value if audit_cfg.threshold.value is not None
                   else 0.5)
    p_after = p_base.copy()
    rules, costs = {}, {}
    for j, t in enumerate(cfg.tasks):
        rule = fit_group_thresholds(
            p_base[fit, j], y[fit, j], groups[fit], attribute=attr,
            constraint=cfg.thresholds.constraint, objective=cfg.thresholds.objective,
            grid_size=cfg.thresholds.grid_size)
        rules[t] = rule.to_dict()
        costs[t] = threshold_cost(p_base[test, j], y[test, j], groups[test], rule, single)
        # after-scores are the rule's (seeded) decisions, audited at the same threshold
        decision = rule.predict(p_base[:, j], groups, seed=cfg.split.seed + j)
        p_after[:, j] = np.where(decision == 1, 1.0, 0.0)
    return Adapted(p_after=p_after, state=state, postprocess={"group_thresholds": rules},
                    training={"threshold_cost": costs})


def _trained(cfg: FinetuneConfig, site: Site, base: LoadedModel, mcfg: ModelConfig,
             task_index: list[int], out: Path, resume: bool,
             progress: Callable[[dict[str, Any]], None] | None) -> Adapted:
    """Train a copy of the parent (head or full) and score the site with it."""
    frame, fit, val, y = site.frame, site.fit, site.split.mask("val"), site.y
    module = copy.deepcopy(base.module)
    assert module is not None
    gtrain = None
    if cfg.training.sampling == "group_balanced" or cfg.training.group_dro:
        names = cfg.training.group_attributes or tuple(cfg.attributes)
        gtrain = combined_groups(frame[fit], {a: cfg.attributes[a] for a in names})
    if progress is not None:
        progress({"event": "stage", "stage": f"training ({cfg.strategy})"})
    windows = site.data.windows
    res = train_model(
        module, windows[fit], y[fit], windows[val], y[val],
        strategy=cfg.strategy,  # type: ignore[arg-type]
        config=cfg.training, task_index=task_index, groups_train=gtrain,
        aggregate=mcfg.window.aggregate if mcfg.window is not None else "max",
        checkpoint_dir=out / "checkpoints", resume=resume, progress=progress)
    adapted = dataclasses.replace(base, module=module.to(base.device).eval())
    training = {"history": res.history, "initial_val": res.initial_val,
                "best_epoch": res.best_epoch,
                "stopped_early": res.stopped_early, "trainable_parameters": res.trainable,
                "group_dro_weights": res.group_weights}
    return Adapted(p_after=score_windows(adapted, windows)[:, task_index],
                    state=res.state_dict, training=training)
