"""Paired comparison of two survival models (``ecgaudit compare`` with survival tasks).

Called from :func:`ecgaudit.pipeline._compare.compare_predictions` once both prepared tables
are aligned on the id column; the statistics are
:func:`ecgaudit.metrics._survpaired.paired_survival`. The table has the comparison columns
plus ``horizon``; groups the audit's suppression plan withholds (fewer than
``min_cell_size`` patients, or a complement of one) lose every number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgaudit.cohort import build_cohort
from ecgaudit.config import AuditConfig
from ecgaudit.errors import InputError
from ecgaudit.metrics._survpaired import paired_survival
from ecgaudit.pipeline._survival import survival_tasks
from ecgaudit.privacy import REASON_COMPLEMENTARY, REASON_SUPPRESSED, plan_suppression

__all__ = ["SURVIVAL_COMPARISON_COLUMNS", "compare_survival"]

SURVIVAL_COMPARISON_COLUMNS = (
    "task", "attribute", "group", "metric", "horizon", "baseline", "candidate", "change",
    "change_ci_low", "change_ci_high", "ci_method", "n", "status", "reason",
)
MSG_FOLLOW_UP = ("baseline and candidate predictions are not the same patients: task "
                 "'{task}' follow-up times or events differ for {n} ids, e.g. {ids}")


def _check_same(fb: pd.DataFrame, fc: pd.DataFrame, config: AuditConfig) -> None:
    ids = fb[config.id_column].astype(str)
    for t in config.tasks:
        differ = np.flatnonzero(
            (fb[f"t:{t.name}"].to_numpy() != fc[f"t:{t.name}"].to_numpy())
            | (fb[f"e:{t.name}"].to_numpy() != fc[f"e:{t.name}"].to_numpy()))
        if differ.size:
            raise InputError(MSG_FOLLOW_UP.format(task=t.name, n=differ.size,
                                                  ids=", ".join(ids.iloc[differ[:3]])))


def compare_survival(fb: pd.DataFrame, fc: pd.DataFrame, config: AuditConfig, *,
                     n_boot: int, seed: int) -> pd.DataFrame:
    """Paired change table of two survival models on the same (aligned) prepared rows.

    Parameters
    ----------
    fb, fc : pandas.DataFrame
        Prepared tables of the baseline and candidate, row ``i`` the same ECG in both.
    config : AuditConfig
        The audit config (survival tasks).
    n_boot : int
        Bootstrap replicates shared by both models.
    seed : int
        Bootstrap seed.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SURVIVAL_COMPARISON_COLUMNS`.

    Raises
    ------
    InputError
        If the two tables' follow-up times or events differ.
    """
    _check_same(fb, fc, config)
    cohort = build_cohort(fb, config)
    patients = None
    if config.patient_column:
        _, patients = np.unique(fb[config.patient_column].astype(str).to_numpy(),
                                return_inverse=True)
    rows = paired_survival(survival_tasks(fb, config), survival_tasks(fc, config),
                           cohort.groupings, patients,
                           level=config.ci_level, min_events=config.min_events,
                           n_boot=n_boot, seed=seed,
                           max_degenerate=config.bootstrap_max_degenerate)
    table = pd.DataFrame(rows).reindex(columns=list(SURVIVAL_COMPARISON_COLUMNS))
    table["n"] = table["n"].astype("Int64")
    return _withhold(table, cohort, patients, config.min_cell_size)


def _withhold(table: pd.DataFrame, cohort: object, patients: np.ndarray | None,
              k: int) -> pd.DataFrame:
    """Withhold the groups the audit's plan hides (small groups and their complements)."""
    unit_of: dict[tuple[str, str], int] = {}
    for g in cohort.groupings:  # type: ignore[attr-defined]
        codes = np.asarray(g.codes)
        for i, name in enumerate(g.groups):
            idx = np.flatnonzero(codes == i)
            unit_of[(g.attribute, name)] = int(idx.size if patients is None
                                               else np.unique(patients[idx]).size)
    first = table.drop_duplicates(["attribute", "group"])
    sizes = pd.DataFrame({"task": first["task"], "attribute": first["attribute"],
                          "group": first["group"], "metric": "harrell_c",
                          "n": first["n"].astype(float), "n_pos": np.nan,
                          "estimate": np.nan})
    plan = plan_suppression(sizes, unit_of, k, rate_cells=False)
    hide = np.array([plan.group_hidden(a, g) for a, g in zip(table["attribute"],
                                                              table["group"])], dtype=bool)
    out = table.copy()
    out.loc[hide, ["baseline", "candidate", "change", "change_ci_low", "change_ci_high"]] = (
        np.nan)
    out.loc[hide, ["status", "ci_method"]] = ["suppressed", "none"]
    out.loc[hide, "reason"] = [
        REASON_SUPPRESSED.format(k=k) if plan.groups[(a, g)] == "primary"
        else REASON_COMPLEMENTARY for a, g in zip(out.loc[hide, "attribute"],
                                                  out.loc[hide, "group"])]
    out.loc[hide, "n"] = pd.NA
    return out
