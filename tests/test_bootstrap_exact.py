"""Exactness of the cell engine: point estimates vs scikit-learn, replicates vs row-level."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.metrics._bootstats import METRIC_INDEX, replicate_metrics
from ecgaudit.metrics._bootstrap import (
    Grouping,
    TaskArrays,
    point_estimates,
    replicate_weights,
)
from ecgaudit.metrics._cells import build_cells
from ecgaudit.schema import METRICS

CLIP = 1e-6


def _codes(values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    groups = tuple(sorted(set(values.tolist())))
    lookup = {g: i for i, g in enumerate(groups)}
    return np.array([lookup[v] for v in values], dtype=np.int32), groups


def _cohort(n: int = 1500, seed: int = 4):
    frame = make_synthetic_cohort(n, seed=seed, tasks=("a", "b"), ecgs_per_patient=2.0).frame
    race = frame["race"].fillna("Unknown").to_numpy(dtype=object)
    sex = frame["sex"].to_numpy(dtype=object)
    rc, rg = _codes(race)
    sc, sg = _codes(sex)
    inter = np.array([f"{r} & {s}" for r, s in zip(race, sex)], dtype=object)
    ic, ig = _codes(inter)
    groupings = [
        Grouping("overall", np.zeros(n, np.int32), ("all",), None),
        Grouping("race", rc, rg, rg.index("White")),
        Grouping("sex", sc, sg, 0),
        Grouping("race & sex", ic, ig, ig.index("White & female")),
    ]
    pa = frame["p_a"].to_numpy(float)
    pb = np.round(frame["p_b"].to_numpy(float), 2)  # heavy ties
    pb[:20] = 1.0  # saturated scores, as in real float32 model output
    pb[20:40] = 0.0
    tasks = [
        TaskArrays("a", frame["y_a"].to_numpy(np.int8), pa, 0.3),
        TaskArrays("b", frame["y_b"].to_numpy(np.int8), pb, 0.25),
    ]
    return tasks, groupings, frame["patient_id"].to_numpy()


def _reference(y: np.ndarray, p: np.ndarray, t: float, bins: int = 10) -> dict[str, float]:
    """Row-level definitions, independent of the engine (sklearn, statsmodels, numpy)."""
    out = {m: float("nan") for m in METRICS}
    n, pos = y.size, int(y.sum())
    neg = n - pos
    flag = p >= t
    tp, fp = int(np.sum(flag & (y == 1))), int(np.sum(flag & (y == 0)))
    fn, tn = pos - tp, neg - fp
    out["brier"] = brier_score_loss(y, p) if n else float("nan")
    out["oe_ratio"] = y.sum() / p.sum() if p.sum() > 0 else float("nan")
    order = np.lexsort((y, p))  # ties: negatives first, whatever the row order
    if n:
        out["ece"] = sum(
            len(b) * abs(y[b].mean() - p[b].mean()) for b in np.array_split(order, bins) if len(b)
        ) / n
    if pos:
        out["sensitivity"], out["fnr"] = tp / pos, fn / pos
    if neg:
        out["specificity"], out["fpr"] = tn / neg, fp / neg
    if tp + fp:
        out["ppv"] = tp / (tp + fp)
    if tn + fn:
        out["npv"] = tn / (tn + fn)
    out["flag_rate"] = (tp + fp) / n if n else float("nan")
    if pos and neg:
        out["auroc"] = roc_auc_score(y, p)
        out["auprc"] = average_precision_score(y, p)
        x = np.log(np.clip(p, CLIP, 1 - CLIP) / (1 - np.clip(p, CLIP, 1 - CLIP)))
        # The MLE exists only without (quasi-)complete separation of the classes by x.
        if x[y == 0].max() > x[y == 1].min() and x[y == 1].max() > x[y == 0].min():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit = sm.Logit(y.astype(float), sm.add_constant(x)).fit(
                    disp=0, tol=1e-14, maxiter=200)
            if not any(issubclass(c.category, PerfectSeparationWarning) for c in caught):
                out["cal_intercept"], out["cal_slope"] = fit.params
    return out


def _assert_close(engine: np.ndarray, ref: dict[str, float], label: str) -> None:
    for metric, value in ref.items():
        got = engine[METRIC_INDEX[metric]]
        tol = 1e-7 if metric.startswith("cal_") else 1e-12
        if np.isnan(value):
            assert np.isnan(got), f"{label} {metric}: expected undefined, got {got}"
        else:
            assert got == pytest.approx(value, rel=tol, abs=tol), f"{label} {metric}"


def test_point_estimates_match_row_level_definitions() -> None:
    tasks, groupings, _ = _cohort()
    pe = point_estimates(tasks, groupings, clip=CLIP)
    assert len(pe) == len(tasks) * sum(len(g.groups) for g in groupings) * len(METRICS)
    for task in tasks:
        for g in groupings:
            for gi, name in enumerate(g.groups):
                m = g.codes == gi
                ref = _reference(task.y[m].astype(int), task.p[m], task.threshold)
                sub = pe[(pe.task == task.name) & (pe.attribute == g.attribute)
                         & (pe.group == name)]
                est = sub.set_index("metric").loc[list(METRICS), "estimate"].to_numpy()
                _assert_close(est, ref, f"{task.name}/{g.attribute}/{name}")


@pytest.mark.parametrize("clustered", [False, True])
def test_replicate_on_cells_equals_row_level_on_same_draw(clustered: bool) -> None:
    tasks, groupings, patient = _cohort(n=800, seed=7)
    w = replicate_weights(groupings, 800, n_boot=4, seed=11,
                          patient=patient if clustered else None)
    for task in tasks:
        order = np.lexsort((task.y, task.p))
        for g in groupings:
            cells = build_cells(task.y, task.p, g.codes, len(g.groups), task.threshold, order)
            reps = replicate_metrics(cells, w, clip=CLIP)
            for b in range(w.shape[0]):
                for gi in range(len(g.groups)):
                    rows = np.repeat(np.flatnonzero(g.codes == gi), w[b][g.codes == gi])
                    ref = _reference(task.y[rows].astype(int), task.p[rows], task.threshold)
                    _assert_close(reps[b, :, gi], ref, f"rep {b} {task.name}/{g.groups[gi]}")


def test_ece_with_integer_weights_straddling_bin_edges() -> None:
    # 7 rows with weights summing to 23 -> bins of sizes 3,2,2,... (array_split of 23 into 10).
    y = np.array([0, 1, 0, 1, 1, 0, 1], dtype=np.int8)
    p = np.array([0.1, 0.2, 0.2, 0.5, 0.7, 0.7, 0.9])
    w = np.array([[5, 1, 4, 3, 6, 2, 2], [0, 0, 9, 1, 0, 13, 0]], dtype=np.int32)
    cells = build_cells(y, p, np.zeros(7, np.int32), 1, 0.5)
    got = replicate_metrics(cells, w)[:, METRIC_INDEX["ece"], 0]
    for b in range(2):
        rows = np.repeat(np.arange(7), w[b])
        ref = _reference(y[rows].astype(int), p[rows], 0.5)["ece"]
        assert got[b] == pytest.approx(ref, abs=1e-14)


def test_undefined_metrics_are_nan_never_zero_or_half() -> None:
    y = np.array([0, 0, 0, 1, 1], dtype=np.int8)
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
    codes = np.array([0, 0, 0, 1, 1], dtype=np.int32)  # group 0 all negative, group 1 all pos
    cells = build_cells(y, p, codes, 3, 0.35)  # group 2 is empty
    est = replicate_metrics(cells, np.ones((1, 5), np.int32))[0]
    for metric in ("auroc", "auprc", "cal_intercept", "cal_slope", "sensitivity", "fnr", "ppv"):
        assert np.isnan(est[METRIC_INDEX[metric], 0]), metric
    for metric in ("specificity", "fpr", "npv"):
        assert np.isnan(est[METRIC_INDEX[metric], 1]), metric
    assert np.isnan(est[:, 2]).all()
    assert est[METRIC_INDEX["specificity"], 0] == 1.0
    assert est[METRIC_INDEX["sensitivity"], 1] == 1.0
