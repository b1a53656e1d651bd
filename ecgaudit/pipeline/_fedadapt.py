"""Shared steps of the ``federated`` and ``adapt`` strategies: load, score, audit, write.

Both end like every other strategy: the parent and the adapted model are scored on held-out
patients, audited with the same config, compared paired, gated by the no-group-worse rule,
and the adapted model, manifest and ``audit/`` folder are written (no timestamps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ecgaudit.config import AuditConfig
from ecgaudit.errors import ConfigError, InputError
from ecgaudit.finetune import (
    FinetuneConfig,
    export_site_model,
    library_versions,
    split_digest,
)
from ecgaudit.finetune._data import SiteData, load_site_data
from ecgaudit.io import atomic_write_text, file_sha256, frame_to_csv
from ecgaudit.metrics import calibration_bins
from ecgaudit.models import LoadedModel, ModelConfig, load_model, load_model_config
from ecgaudit.pipeline._audit import audit
from ecgaudit.pipeline._finetune import (
    ERR_HAS_POSTPROCESS,
    ERR_NOT_TRAINABLE,
    ERR_TASK,
    FinetuneOutcome,
    _audit_config,
    _predictions,
)
from ecgaudit.pipeline._finetunegate import (
    before_after_gate,
    default_policy,
    summarize_before_after,
)
from ecgaudit.policy import load_policy
from ecgaudit.reports import write_report
from ecgaudit.reports._beforeafter import write_before_after
from ecgaudit.result import to_jsonable

__all__ = ["Prepared", "dumps", "group_column", "prepare", "write_outcome"]


def dumps(data: Any) -> str:
    """Deterministic JSON text (sorted keys, no NaN)."""
    return json.dumps(to_jsonable(data), sort_keys=True, indent=1, allow_nan=False) + "\n"


def suppress_small(counts: Any, low: int = 1, high: int = 10) -> Any:
    """Replace every count from ``low`` to ``high`` in nested dicts by ``"<11"``.

    Positives per split and site are condition counts; like every export they must not
    show counts of 1-10.
    """
    if isinstance(counts, dict):
        return {k: suppress_small(v, low, high) for k, v in counts.items()}
    if isinstance(counts, int) and not isinstance(counts, bool) and low <= counts <= high:
        return f"<{high + 1}"
    return counts


@dataclass
class Prepared:
    """Model, config and site data of a federated / adapt run."""

    cfg: FinetuneConfig
    mcfg: ModelConfig
    base: LoadedModel
    task_index: list[int]
    site: SiteData
    audit_cfg: AuditConfig
    aggregate: str


def group_column(site: SiteData, column: str, role: str) -> NDArray[np.str_]:
    """Return a metadata column as strings (``1.0`` -> ``1``), or a clear error if absent."""
    frame = site.frame
    if column not in frame.columns:
        raise InputError(f"metadata '{site.metadata_name}' lacks the {role} column '{column}'; "
                         f"columns: {list(map(str, frame.columns))}")
    raw = frame[column]
    num = pd.to_numeric(raw, errors="coerce")
    whole = num.notna() & (num == np.round(num))
    text = raw.astype("string").str.strip().fillna("Unknown")
    text = text.where(~whole, num.round().astype("Int64").astype("string"))
    return text.to_numpy(dtype=object).astype(str)



def prepare(model: str | Path, model_config: str | Path, ecgs: str | Path,
            metadata: str | Path, cfg: FinetuneConfig,
            ecg_options: dict[str, Any] | None) -> Prepared:
    """Load and check the parent model (trainable, sigmoid) and the site data."""
    mcfg = load_model_config(model_config)
    if mcfg.postprocess is not None:
        raise ConfigError(ERR_HAS_POSTPROCESS.format(name=Path(model_config).name))
    missing = [t for t in cfg.tasks if t not in mcfg.classes]
    if missing:
        raise ConfigError(ERR_TASK.format(task=missing[0], classes=list(mcfg.classes)))
    base = load_model(model, mcfg, device="cpu")
    if (base.module is None or base.format not in ("safetensors", "state_dict")
            or mcfg.output_activation != "sigmoid"):
        raise InputError(ERR_NOT_TRAINABLE.format(strategy=cfg.strategy, fmt=base.format,
                                                  act=mcfg.output_activation))
    unlabelled = (cfg.adapt.domain_column, cfg.adapt.target) if cfg.adapt is not None \
        and cfg.strategy == "adapt" else None
    site = load_site_data(ecgs, metadata, mcfg, cfg, ecg_options=ecg_options,
                          unlabelled=unlabelled)
    return Prepared(cfg=cfg, mcfg=mcfg, base=base,
                    task_index=[mcfg.classes.index(t) for t in cfg.tasks], site=site,
                    audit_cfg=_audit_config(cfg),
                    aggregate=mcfg.window.aggregate if mcfg.window is not None else "max")


def prediction_frame(prep: Prepared, mask: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
    """Audit input (ids, labels, attributes, ``score:<task>``) of the rows in ``mask``."""
    return _predictions(prep.site.frame[mask], scores[mask], prep.cfg)


def write_outcome(
    prep: Prepared,
    out: Path,
    *,
    model_config: str | Path,
    state: dict[str, Any],
    test: np.ndarray,
    p_base: np.ndarray,
    p_after: np.ndarray,
    split_labels: np.ndarray,
    manifest_extra: dict[str, Any],
    policy: str | Path | None,
    extra_files: dict[str, str] | None = None,
) -> FinetuneOutcome:
    """Audit base vs adapted on the ``test`` rows, gate, and write every output file.

    ``split_labels`` is the per-row split name written to ``split.csv``;
    ``extra_files`` maps paths under ``audit/`` to text written as well.
    """
    cfg, audit_cfg, frame = prep.cfg, prep.audit_cfg, prep.site.frame
    before_frame = prediction_frame(prep, test, p_base)
    after_frame = prediction_frame(prep, test, p_after)
    before = audit(before_frame, audit_cfg)
    after = audit(after_frame, audit_cfg)
    pol = load_policy(policy, after) if policy is not None else default_policy(cfg)
    comparison, gate = before_after_gate(before_frame, after_frame, after, audit_cfg, pol,
                                         n_boot=cfg.gate.n_boot, seed=cfg.split.seed)
    summary = summarize_before_after(before, after, comparison, cfg.gate_metric)
    ids = frame[cfg.id_column].astype(str)
    names = sorted(set(split_labels.tolist()))
    manifest = {
        "tool": "ecgaudit finetune",
        "parent_model": {"file": prep.base.file_name, "sha256": prep.base.sha256,
                         "format": prep.base.format, "config_file": Path(model_config).name,
                         "config_sha256": file_sha256(model_config)},
        "data": {"metadata": {"name": prep.site.metadata_name,
                              "sha256": prep.site.metadata_sha256, "rows": len(frame)},
                 "ecgs": prep.site.ecgs, "input_windows_sha256": prep.site.windows_sha256,
                 "preprocessing": prep.site.preprocessing},
        "split": {"seed": cfg.split.seed,
                  "records": {s: int((split_labels == s).sum()) for s in names},
                  "record_ids_sha256": {s: split_digest(ids[split_labels == s].tolist())
                                        for s in names}},
        "strategy": cfg.strategy,
        "tasks": list(cfg.tasks),
        "config": cfg.to_dict(),
        **manifest_extra,
        "gate": {"policy": pol.name, "status": gate.status, "exit_code": gate.exit_code},
        "versions": library_versions(),
    }
    paths = export_site_model(out, state_dict=state, model_config=prep.mcfg.to_dict(),
                              manifest=manifest)
    split_csv = pd.DataFrame({cfg.id_column: frame[cfg.id_column], "split": split_labels})
    paths["split"] = atomic_write_text(out / "split.csv",
                                       frame_to_csv(split_csv))
    adir = out / "audit"
    for name, res in (("before", before), ("after", after)):
        for role, p in res.save(adir / name).items():
            paths[f"{name}_{role}"] = p
    files = {"comparison.json": dumps(comparison.to_dict()), "gate.json": dumps(gate.to_dict()),
             "summary.json": dumps(summary),
             "comparison.csv": frame_to_csv(comparison.table),
             **(extra_files or {})}
    for fname, text in files.items():
        paths[fname] = atomic_write_text(adir / fname, text)
    y = frame.loc[:, list(cfg.labels.values())].to_numpy(dtype=float)
    mc = audit_cfg.min_cell_size
    calib = {t: {"before": calibration_bins(p_base[test, j], y[test, j], min_cell=mc),
                 "after": calibration_bins(p_after[test, j], y[test, j], min_cell=mc)}
             for j, t in enumerate(cfg.tasks)}
    paths["before_after.html"] = write_before_after(
        adir / "before_after.html", strategy=cfg.strategy, parent=prep.base.file_name,
        summary=summary, comparison=comparison, gate=gate, calibration=calib)
    view = {"title": f"Before/after ({cfg.strategy}): change in {cfg.gate_metric}",
            "summary": {"strategy": cfg.strategy, "gate": gate.status, "warning": ""},
            "rows": summary["groups"]}
    paths["report.html"] = write_report(after, adir / "report.html", gate=gate.to_dict(),
                                        compare=view)
    return FinetuneOutcome(before=before, after=after, comparison=comparison, gate=gate,
                           summary=summary, manifest=manifest, paths=paths)
