"""The committee views of an audit: curves along numeric axes and controlled disparities.

One call from :func:`ecgaudit.pipeline._audit._run` adds, when configured,
``extras["curves_by_value"]`` / ``extras["curves_by_value_axes"]`` (``continuous_axes``,
see :mod:`ecgaudit.pipeline._curves`) and ``extras["controlled_disparities"]`` /
``extras["control"]`` (``control``, see :mod:`ecgaudit.disparity._controlled`). The metrics
and disparities tables are unchanged. See ``docs/views.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ecgaudit.cohort import Cohort
from ecgaudit.config import AuditConfig
from ecgaudit.disparity import adjust_pvalues
from ecgaudit.disparity._controlled import CONTROLLED_EXTRA_COLUMNS, controlled_comparisons
from ecgaudit.metrics._cells import finest_strata
from ecgaudit.pipeline._curves import build_curves
from ecgaudit.privacy import suppress_disparities
from ecgaudit.schema import DISPARITY_COLUMNS, INTERSECTION_SEP, OVERALL_ATTRIBUTE

__all__ = ["CONTROLLED_COLUMNS", "build_views"]

#: Columns of a controlled-disparity row: the disparity columns, then the control fields.
CONTROLLED_COLUMNS = (*DISPARITY_COLUMNS, *CONTROLLED_EXTRA_COLUMNS)
_HET_VALUES = ("heterogeneity_statistic", "heterogeneity_p", "i2")


def build_views(frame: pd.DataFrame, cohort: Cohort, config: AuditConfig,
                thresholds: dict[str, dict[str, Any]], patients: np.ndarray | None,
                units: dict[str, np.ndarray], metrics: pd.DataFrame) -> dict[str, Any]:
    """Return the extras entries of the configured views (empty when none is configured).

    Parameters
    ----------
    frame : pandas.DataFrame
        Prepared audit table.
    cohort : Cohort
        Groupings.
    config : AuditConfig
        ``continuous_axes`` and ``control`` (and the bootstrap and small-cell settings).
    thresholds : dict
        Frozen threshold per task.
    patients : ndarray, optional
        Patient code per row.
    units : dict
        Patients (or ECGs) per group, by attribute.
    metrics : pandas.DataFrame
        The crude metric table after small-cell suppression: a controlled comparison is
        withheld whenever its group's or reference's crude metric row is.

    Returns
    -------
    dict
        Entries for ``AuditResult.extras``.
    """
    out = build_curves(frame, cohort, config, thresholds, patients, units)
    if config.control:
        out["control"] = list(config.control)
        out["controlled_disparities"] = controlled_rows(frame, cohort, config, thresholds,
                                                        metrics)
    return out


def controlled_rows(frame: pd.DataFrame, cohort: Cohort, config: AuditConfig,
                    thresholds: dict[str, dict[str, Any]], metrics: pd.DataFrame
                    ) -> list[dict[str, Any]]:
    """Return the controlled disparities of every single attribute that is not a control.

    Small-cell suppression mirrors the crude table's (a comparison whose group or
    reference crude metric row is withheld in ``metrics`` has no numbers); Holm and BH
    p-values are adjusted over the controlled rows as their own family.
    """
    control = INTERSECTION_SEP.join(config.control)
    strata = finest_strata([cohort.grouping(a).codes for a in config.control],
                           cohort.n).codes
    rows: list[dict[str, Any]] = []
    for task in config.tasks:
        y = frame[f"y:{task.name}"].to_numpy()
        p = frame[f"p:{task.name}"].to_numpy(dtype=float)
        for g in cohort.groupings:
            if (g.reference is None or g.attribute == OVERALL_ATTRIBUTE
                    or len(g.components) != 1 or g.attribute in config.control):
                continue
            found = controlled_comparisons(
                y, p, float(thresholds[task.name]["value"]), g.codes, g.groups, g.reference,
                strata, control, min_cell_size=config.min_cell_size, level=config.ci_level)
            rows += [{"task": task.name, "attribute": g.attribute, **r} for r in found]
    if not rows:
        return []
    table = pd.DataFrame(rows).assign(p_holm=np.nan, p_bh=np.nan)
    table = suppress_disparities(table, metrics)
    small = (table["status"] == "suppressed").to_numpy()
    table.loc[small, list(_HET_VALUES)] = np.nan
    table.loc[small, "heterogeneity_test"] = "none"
    for col in ("n_strata", "heterogeneity_df"):
        table[col] = [None if s or v is None or v != v else int(v)
                      for s, v in zip(small, table[col])]
    table = adjust_pvalues(table)
    # binary tasks only: no horizon (the column is kept so the contract is the same)
    return table.reindex(columns=list(CONTROLLED_COLUMNS)).to_dict("records")
