"""``strategy: federated``: FedAvg / FedProx across sites, then the before/after audit.

One patient-level split of all sites' records (stratified by site, so every site keeps its
own train / validation / test patients and no patient is in two splits) -> one client per
site -> federated rounds -> score the held-out patients with the parent and the global
model -> audit both (the site column is an audited attribute, so every metric is also per
site) -> paired comparison + no-group-worse gate. With ``federated.compare`` the same
held-out patients are also scored by a centralised fine-tune (all sites' training records
pooled, which a real federation cannot do) and by local-only fine-tunes (each site's own
model on its own patients), and every pair is compared paired (``audit/approaches.csv``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.config import AttributeConfig
from ecgaudit.errors import InputError, ValidationError
from ecgaudit.finetune import (
    FinetuneConfig,
    PatientSplit,
    attribute_groups,
    check_no_overlap,
    check_positives,
    split_patients,
    train_model,
)
from ecgaudit.finetune._data import score_windows
from ecgaudit.finetune._federated import SiteClient
from ecgaudit.finetune._flower import run_flower
from ecgaudit.io import frame_to_csv
from ecgaudit.pipeline._audit import audit
from ecgaudit.pipeline._compare import compare_predictions
from ecgaudit.pipeline._fedadapt import (
    Prepared,
    dumps,
    group_column,
    prediction_frame,
    prepare,
    suppress_small,
    write_outcome,
)
from ecgaudit.pipeline._finetune import FinetuneOutcome

__all__ = ["federated_and_audit"]

SITE_ATTRIBUTE = "site"
ERR_FEW_PATIENTS = (
    "site '{site}' (column '{col}') has {n} patients, fewer than federated.min_site_patients "
    "= {need}: too few to split into train / validation / test. Leave it out with "
    "federated.sites, merge it with another site, or lower min_site_patients."
)


def _with_site_attribute(cfg: FinetuneConfig) -> FinetuneConfig:
    fed = cfg.federated
    assert fed is not None
    attrs = dict(cfg.attributes)
    if not any((a.column or k) == fed.site_column for k, a in attrs.items()):
        name = SITE_ATTRIBUTE if SITE_ATTRIBUTE not in attrs else f"{SITE_ATTRIBUTE}_"
        attrs[name] = AttributeConfig(column=fed.site_column)
    return cfg.model_copy(update={"attributes": attrs})


def _site_split(prep: Prepared, sites: np.ndarray) -> PatientSplit:
    cfg = prep.cfg
    strata = {"__site": sites}
    for a in cfg.split.stratify:
        strata[a] = attribute_groups(prep.site.frame, a, cfg.attributes[a])
    return split_patients(prep.site.frame, patient_column=cfg.patient_column,
                          label_columns=list(cfg.labels.values()), strata=strata,
                          fractions=(cfg.split.train, cfg.split.val, cfg.split.test),
                          seed=cfg.split.seed)


def _check_sites(prep: Prepared, sites: np.ndarray, names: list[str],
                 split: PatientSplit) -> dict[str, Any]:
    cfg, fed, frame = prep.cfg, prep.cfg.federated, prep.site.frame
    assert fed is not None
    mp = cfg.min_positives
    counts = {}
    for s in names:
        m = sites == s
        n_pat = frame.loc[m, cfg.patient_column].nunique()
        if n_pat < fed.min_site_patients:
            raise InputError(ERR_FEW_PATIENTS.format(site=s, col=fed.site_column, n=n_pat,
                                                     need=fed.min_site_patients))
        sub = PatientSplit(split=split.split[m], seed=split.seed, n_patients={}, strata=0)
        try:
            pos = check_positives(frame[m], sub, cfg.labels,
                                  {"train": mp.train, "val": mp.val, "test": mp.test})
        except ValidationError as err:
            raise InputError(f"site '{s}': {err}") from None
        counts[s] = {"patients": int(n_pat), "positives": suppress_small(pos),
                     "records": {k: int(sub.mask(k).sum()) for k in ("train", "val", "test")}}
    return counts


def _train_full(prep: Prepared, mask_train: np.ndarray, mask_val: np.ndarray) -> np.ndarray:
    """Fine-tune a copy of the parent on the given rows; return its scores on every row."""
    module = copy.deepcopy(prep.base.module)
    assert module is not None
    y = prep.site.frame.loc[:, list(prep.cfg.labels.values())].to_numpy(dtype=np.float32)
    w = prep.site.windows
    train_model(module, w[mask_train], y[mask_train], w[mask_val], y[mask_val],
                strategy="full", config=prep.cfg.training, task_index=prep.task_index,
                aggregate=prep.aggregate)  # type: ignore[arg-type]
    adapted = dataclasses.replace(prep.base, module=module.eval())
    return score_windows(adapted, w)[:, prep.task_index]


def _approaches(prep: Prepared, test: np.ndarray, scores: dict[str, np.ndarray]) -> dict[
        str, str]:
    """Audit every approach and compare each pair paired on the same held-out patients."""
    cfg = prep.cfg
    frames = {k: prediction_frame(prep, test, v) for k, v in scores.items()}
    pairs = [("centralised", "federated"), ("local", "federated"), ("parent", "centralised"),
             ("parent", "local")]
    tables = []
    for a, b in pairs:
        if a in frames and b in frames:
            c = compare_predictions(frames[a], frames[b], prep.audit_cfg,
                                    n_boot=cfg.gate.n_boot, seed=cfg.split.seed)
            t = c.table.copy()
            t.insert(0, "comparison", f"{b} - {a}")
            tables.append(t)
    metrics = []
    for k, f in frames.items():
        m = audit(f, prep.audit_cfg).metrics.copy()
        m.insert(0, "approach", k)
        metrics.append(m)
    out = {"approaches_metrics.csv": frame_to_csv(pd.concat(metrics))}
    if tables:
        out["approaches.csv"] = frame_to_csv(pd.concat(tables))
    return out


def federated_and_audit(
    model: str | Path, model_config: str | Path, ecgs: str | Path, metadata: str | Path,
    cfg: FinetuneConfig, out: Path, *, policy: str | Path | None = None,
    ecg_options: dict[str, Any] | None = None, resume: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> FinetuneOutcome:
    """Run ``strategy: federated`` (see the module docstring).

    Same parameters and outcome as :func:`ecgaudit.pipeline.finetune_and_audit`.

    Raises
    ------
    InputError
        Missing site column, a site with too few patients or positives, leakage.
    """
    fed = cfg.federated
    assert fed is not None
    note = progress or (lambda _e: None)
    cfg = _with_site_attribute(cfg)
    note({"event": "stage", "stage": "reading site data"})
    prep = prepare(model, model_config, ecgs, metadata, cfg, ecg_options)
    all_sites = group_column(prep.site, fed.site_column, "site")
    names = list(fed.sites) if fed.sites is not None else sorted(set(all_sites.tolist()))
    unknown = [s for s in names if s not in set(all_sites.tolist())]
    if unknown:
        raise InputError(f"federated.sites {unknown} do not occur in column "
                         f"'{fed.site_column}'; values: {sorted(set(all_sites.tolist()))}")
    if len(names) < 2:
        raise InputError(f"federated fine-tuning needs at least 2 sites; found {names}")
    split = _site_split(prep, all_sites)
    member = np.isin(all_sites, names)
    labels = np.where(member, split.split, "excluded")
    counts = _check_sites(prep, all_sites, names, split)
    frame, w = prep.site.frame, prep.site.windows
    train, val, test = (member & (labels == s) for s in ("train", "val", "test"))
    check_no_overlap(frame[train | val], frame[test], id_column=cfg.id_column,
                     patient_column=cfg.patient_column, finetune_name="federated training",
                     audit_name="held-out audit split")
    y = frame.loc[:, list(cfg.labels.values())].to_numpy(dtype=np.float32)
    clients = [SiteClient(s, w[train & (all_sites == s)], y[train & (all_sites == s)],
                          w[val & (all_sites == s)], y[val & (all_sites == s)],
                          seed=cfg.training.seed * 1000 + i) for i, s in enumerate(names)]
    note({"event": "stage", "stage": "scoring with the base model"})
    p_base = score_windows(prep.base, w)[:, prep.task_index]
    module = copy.deepcopy(prep.base.module)
    assert module is not None
    note({"event": "stage", "stage": f"federated training ({fed.algorithm}, {len(names)} "
                                     f"sites)"})
    res = run_flower(module, clients, federated=fed, config=cfg.training,
                     task_index=prep.task_index, aggregate=prep.aggregate,  # type: ignore
                     checkpoint_dir=out / "checkpoints", resume=resume, progress=progress)
    p_fed = score_windows(dataclasses.replace(prep.base, module=module.eval()), w)[
        :, prep.task_index]
    extra: dict[str, str] = {}
    if fed.compare:
        note({"event": "stage", "stage": "centralised and local-only fine-tuning (compare)"})
        p_cent = _train_full(prep, train, val)
        p_local = np.zeros_like(p_base)
        for s in names:
            m = all_sites == s
            p_local[m] = _train_full(prep, train & m, val & m)[m]
        extra = _approaches(prep, test, {"parent": p_base, "federated": p_fed,
                                         "centralised": p_cent, "local": p_local})
    extra["sites.json"] = dumps({"site_column": fed.site_column, "sites": counts,
                                 "history": res.history})
    note({"event": "stage", "stage": "auditing before and after"})
    training = {"algorithm": fed.algorithm, "rounds_run": len(res.history),
                "best_round": res.best_round, "stopped_early": res.stopped_early,
                "history": res.history, "initial_val": res.initial_val,
                "trainable_parameters": res.trainable, "sites": counts,
                "compared": sorted(k[:-4] for k in extra if k.endswith(".csv"))}
    return write_outcome(prep, out, model_config=model_config, state=res.state_dict,
                         test=test, p_base=p_base, p_after=p_fed, split_labels=labels,
                         manifest_extra={"training": training}, policy=policy,
                         extra_files=extra)
