"""``strategy: adapt``: unsupervised domain adaptation to an unlabelled target, then audit.

Rows of the metadata whose ``adapt.domain_column`` equals ``adapt.target`` are the target
domain; the others (or those in ``adapt.source``) the labelled source.

1. Target patients are split **without reading labels** (seeded, stratified only by the
   ``split.stratify`` attributes) into an adaptation pool and a held-out part
   (``adapt.target_test``). The pool's labels are never read: only its waveforms enter
   training. The held-out part's labels are read only by the before/after audit.
2. Source patients are split into train / validation (``split.train`` : ``split.val``);
   source patients who also have target records are left out of the source (no patient
   on both sides).
3. DANN or Deep CORAL (:mod:`ecgaudit.finetune._adapt`), model selection on the *source*
   validation loss (label-free on the target).
4. The parent and the adapted model are audited on the held-out target patients, compared
   paired, and gated (no group worse).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np

from ecgaudit.errors import InputError, ValidationError
from ecgaudit.finetune import (
    FinetuneConfig,
    PatientSplit,
    attribute_groups,
    check_no_overlap,
    check_positives,
    split_patients,
)
from ecgaudit.finetune._data import score_windows
from ecgaudit.pipeline._fedadapt import (
    Prepared,
    dumps,
    group_column,
    prepare,
    suppress_small,
    write_outcome,
)
from ecgaudit.pipeline._finetune import FinetuneOutcome

__all__ = ["adapt_and_audit"]

ERR_NO_TARGET = (
    "no ECGs of the adaptation target: column '{col}' has no value '{target}' (values: "
    "{values}). Set adapt.target to one of them, or add the target site's ECGs to the "
    "metadata and ECG source."
)


def _splits(prep: Prepared, domain: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    cfg, frame = prep.cfg, prep.site.frame
    ad = cfg.adapt
    assert ad is not None
    target = domain == ad.target
    if not target.any():
        raise InputError(ERR_NO_TARGET.format(col=ad.domain_column, target=ad.target,
                                              values=sorted(set(domain.tolist()))[:20]))
    source = np.isin(domain, list(ad.source)) if ad.source is not None else ~target
    source &= ~target
    if not source.any():
        raise InputError(f"no labelled source ECGs: every row of column '{ad.domain_column}' "
                         f"is the target '{ad.target}' or not in adapt.source")
    strata = {a: attribute_groups(frame, a, cfg.attributes[a]) for a in cfg.split.stratify}
    pid = frame[cfg.patient_column].astype(str).to_numpy()
    # unlabelled target records (empty labels) always go to the pool, with their patient
    no_label = target & frame.loc[:, list(cfg.labels.values())].isna().any(axis=1).to_numpy()
    splittable = target & ~np.isin(pid, pid[no_label])
    labels = np.full(len(frame), "excluded", dtype=object)
    labels[target] = "target_pool"
    if splittable.any():
        tsplit = split_patients(frame[splittable], patient_column=cfg.patient_column,
                                label_columns=[],  # never the target labels
                                strata={k: v[splittable] for k, v in strata.items()},
                                fractions=(1.0 - ad.target_test, 0.0, ad.target_test),
                                seed=cfg.split.seed)
        labels[splittable] = np.where(tsplit.split == "train", "target_pool", "target_test")
    if not (labels == "target_test").any():
        raise InputError(f"no labelled held-out target ECGs to judge the adaptation: the "
                         f"target '{ad.target}' needs labelled patients (0/1 labels) for "
                         "adapt.target_test")
    shared = source & np.isin(pid, pid[target])
    source &= ~shared
    tr, va = cfg.split.train, cfg.split.val
    ssplit = split_patients(frame[source], patient_column=cfg.patient_column,
                            label_columns=list(cfg.labels.values()),
                            strata={k: v[source] for k, v in strata.items()},
                            fractions=(tr / (tr + va), va / (tr + va), 0.0),
                            seed=cfg.split.seed)
    labels[source] = np.where(ssplit.split == "train", "source_train", "source_val")
    labels = labels.astype(str)
    mp = cfg.min_positives
    try:
        pos_s = check_positives(frame[source], ssplit, cfg.labels,
                                {"train": mp.train, "val": mp.val})
        t_only = PatientSplit(split=np.where(labels[splittable] == "target_test", "test",
                                             "train"),
                              seed=cfg.split.seed, n_patients={}, strata=0)
        pos_t = check_positives(frame[splittable], t_only, cfg.labels, {"test": mp.test})
    except ValidationError as err:
        raise InputError(str(err)) from None
    if (labels == "target_pool").sum() < 2:
        raise InputError(f"the target '{ad.target}' leaves {(labels == 'target_pool').sum()} "
                         "ECGs for adaptation (need at least 2); lower adapt.target_test or "
                         "add target ECGs")
    info = {"target_records_without_labels": int(no_label.sum()),
            "source_patients_left_out_as_also_in_target": int(
                frame.loc[shared, cfg.patient_column].nunique()),
            "positives": suppress_small({"source": {k: pos_s[k] for k in ("train", "val")},
                                         "target_test": pos_t["test"]})}
    return labels, info


def adapt_and_audit(
    model: str | Path, model_config: str | Path, ecgs: str | Path, metadata: str | Path,
    cfg: FinetuneConfig, out: Path, *, policy: str | Path | None = None,
    ecg_options: dict[str, Any] | None = None, resume: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> FinetuneOutcome:
    """Run ``strategy: adapt`` (see the module docstring).

    Same parameters and outcome as :func:`ecgaudit.pipeline.finetune_and_audit`.

    Raises
    ------
    InputError
        No target ECGs, no source ECGs, too few positives, skada missing.
    """
    try:
        from ecgaudit.finetune._adapt import feature_coral_distance, train_adapted
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise InputError(f"strategy 'adapt' needs skada ({err}); install ecgaudit[adapt]") \
            from None
    ad = cfg.adapt
    assert ad is not None
    note = progress or (lambda _e: None)
    note({"event": "stage", "stage": "reading source and target data"})
    prep = prepare(model, model_config, ecgs, metadata, cfg, ecg_options)
    domain = group_column(prep.site, ad.domain_column, "domain")
    labels, info = _splits(prep, domain)
    frame, w = prep.site.frame, prep.site.windows
    m = {k: labels == k for k in ("source_train", "source_val", "target_pool", "target_test")}
    check_no_overlap(frame[m["source_train"] | m["source_val"] | m["target_pool"]],
                     frame[m["target_test"]], id_column=cfg.id_column,
                     patient_column=cfg.patient_column, finetune_name="adaptation data",
                     audit_name="held-out target patients")
    y = frame.loc[:, list(cfg.labels.values())].to_numpy(dtype=np.float32)
    note({"event": "stage", "stage": "scoring with the base model"})
    p_base = score_windows(prep.base, w)[:, prep.task_index]
    module = copy.deepcopy(prep.base.module)
    assert module is not None
    from ecgaudit.finetune import find_head

    head = find_head(module, cfg.training.head)
    gap_before = feature_coral_distance(module, head, w[m["source_val"]], w[m["target_pool"]])
    note({"event": "stage", "stage": f"domain adaptation ({ad.method})"})
    res = train_adapted(module, w[m["source_train"]], y[m["source_train"]],
                        w[m["source_val"]], y[m["source_val"]],
                        w[m["target_pool"]],  # waveforms only: target labels never passed
                        adapt=ad, config=cfg.training, task_index=prep.task_index,
                        aggregate=prep.aggregate,  # type: ignore[arg-type]
                        checkpoint_dir=out / "checkpoints", resume=resume, progress=progress)
    gap_after = feature_coral_distance(module, head, w[m["source_val"]], w[m["target_pool"]])
    p_after = score_windows(dataclasses.replace(prep.base, module=module.eval()), w)[
        :, prep.task_index]
    training = {"method": ad.method, "selection": ad.selection, "best_epoch": res.best_epoch,
                "history": res.history, "initial": res.initial,
                "trainable_parameters": res.trainable,
                "feature_coral_distance": {"before": gap_before, "after": gap_after},
                "target_labels_used_for": "the held-out target audit only (target_test)",
                "skada_version": package_version("skada"),
                **info}
    extra = {"adaptation.json": dumps({"domain_column": ad.domain_column, "target": ad.target,
                                       **training})}
    note({"event": "stage", "stage": "auditing before and after on held-out target"})
    return write_outcome(prep, out, model_config=model_config, state=res.state_dict,
                         test=m["target_test"], p_base=p_base, p_after=p_after,
                         split_labels=labels, manifest_extra={"training": training},
                         policy=policy, extra_files=extra)
