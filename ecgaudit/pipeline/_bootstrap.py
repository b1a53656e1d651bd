"""Replace closed-form intervals by bootstrap intervals when ``bootstrap: B`` is set.

With ``B > 0`` every metric and every disparity gets a bootstrap interval from the same
replicates (stratified by the finest intersection cell, clustered by patient when a patient
column is given); ``ci_method`` says which. Closed-form tests (DeLong, two-proportion z)
keep their p-values; metrics without a closed-form test get the bootstrap p-value
(``test="bootstrap"``). Rows whose share of degenerate replicates exceeds the configured
maximum keep no interval and say why in ``reason``.
"""

from __future__ import annotations

import pandas as pd

from ecgaudit.config import AuditConfig
from ecgaudit.metrics import MetricSession

_KEY = ["task", "attribute", "group", "metric"]
_DKEY = ["task", "attribute", "group", "reference", "metric"]


def _append(reason: pd.Series, extra: pd.Series) -> pd.Series:
    extra = extra.fillna("")
    both = (reason.fillna("") != "") & (extra != "")
    out = reason.fillna("").where(extra == "", extra)
    return out.where(~both, reason.fillna("") + "; " + extra)


def apply_bootstrap(metrics: pd.DataFrame, disparities: pd.DataFrame, session: MetricSession,
                    config: AuditConfig) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Fill bootstrap intervals into the (unsuppressed) metric and disparity tables.

    Parameters
    ----------
    metrics, disparities : pandas.DataFrame
        Tables with closed-form intervals.
    session : MetricSession
        The audit's engine set-up (tasks, groupings, patients, seed, bins, point estimates).
    config : AuditConfig
        ``bootstrap`` (B), ``bootstrap_method``, ``bootstrap_max_degenerate``, ``ci_level``.

    Returns
    -------
    tuple of pandas.DataFrame
        Updated metrics and disparities, and the ranking metrics with their intervals.
    """
    boot = session.bootstrap(config.bootstrap, level=config.ci_level,
                             method=config.bootstrap_method,
                             max_degenerate=config.bootstrap_max_degenerate)
    bm = boot.metrics.set_index(_KEY)
    m = metrics.set_index(_KEY)
    b = bm.reindex(m.index)
    defined = m["status"].isin(["ok", "unstable"]).to_numpy()
    m.loc[defined, "ci_low"] = b.loc[defined, "ci_low"].to_numpy()
    m.loc[defined, "ci_high"] = b.loc[defined, "ci_high"].to_numpy()
    m.loc[defined, "ci_method"] = b.loc[defined, "ci_method"].to_numpy()
    m.loc[defined, "reason"] = _append(m.loc[defined, "reason"],
                                       b.loc[defined, "reason"]).to_numpy()
    metrics = m.reset_index().loc[:, metrics.columns]

    bd = boot.disparities.set_index(_DKEY)
    d = disparities.set_index(_DKEY)
    b = bd.reindex(d.index)
    defined = d["status"].isin(["ok", "unstable"]).to_numpy()
    for col in ("difference_ci_low", "difference_ci_high", "ratio_ci_low", "ratio_ci_high",
                "ci_method"):
        d.loc[defined, col] = b.loc[defined, col].to_numpy()
    no_test = defined & (d["test"] == "none").to_numpy() & b["p_value"].notna().to_numpy()
    d.loc[no_test, "p_value"] = b.loc[no_test, "p_value"].to_numpy()
    d.loc[no_test, "test"] = "bootstrap"
    d.loc[defined, "reason"] = _append(d.loc[defined, "reason"],
                                       b.loc[defined, "reason"]).to_numpy()
    disparities = d.reset_index().loc[:, disparities.columns]
    ranking = boot.ranking.drop(columns=["degenerate_share"])
    return metrics, disparities, ranking
