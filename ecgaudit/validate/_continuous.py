"""Validation of ``kind: continuous`` tasks: measured and predicted numbers.

Checks (all problems are collected, then raised together by ``prepare``):

* missing, non-numeric or non-finite values in the measured (``label``) or predicted
  (``score``) column, naming the column and rows;
* constant predictions (the calibration slope and r2 are undefined);
* a unit mismatch: the typical magnitudes of predicted and measured values differ by a
  factor of 5 or more *and* most predictions fall outside the measured range (e.g.
  glucose in mg/dL against mmol/L, a fraction against a percentage);
* a cut-point with no measured value on one side (its derived binary task has one class).

The prepared frame gets ``y:<task>`` (measured) and ``p:<task>`` (predicted) as float64,
and for every cut-point ``c`` the binary columns of the derived task
:func:`cut_task_name` (``y`` = measured >= c; ``p`` = :func:`cut_scores`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ecgaudit.config import TaskConfig
from ecgaudit.errors import Problem

__all__ = ["cut_scores", "cut_task_name", "prepare_continuous"]

MSG_MISSING = "{what} value is missing"
MSG_NOT_NUMERIC = "{what} values must be numbers; found {values}"
MSG_NOT_FINITE = "{what} values must be finite numbers; found NaN or infinity"
MSG_CONSTANT = "every predicted value is {value:g}: slope, intercept and r2 are undefined"
MSG_UNITS = (
    "predicted and measured values look like different units: median |predicted| "
    "{pred:g} vs median |measured| {meas:g} (x{factor:.3g}), and {share:.0%} of predictions "
    "lie outside the measured range [{lo:g}, {hi:g}]"
)
HINT_UNITS = (
    "convert both columns to the same unit (e.g. glucose mg/dL / 18 = mmol/L; a fraction "
    "x 100 = percent; ms / 1000 = s) before auditing"
)
MSG_CUT_ONE_SIDE = (
    "cut-point {cut:g} of task '{task}': no measured value is {side} {cut:g}, so the derived "
    "binary task has one class"
)
#: A magnitude ratio at least this large (or its inverse) suggests a unit mismatch.
UNIT_FACTOR = 5.0
#: ... provided at least this share of predictions lies outside the measured range.
UNIT_OUTSIDE = 0.5


def cut_task_name(task: str, cut: float) -> str:
    """Name of the binary task derived from ``task`` at cut-point ``cut``."""
    return f"{task}>={cut:g}"


def cut_scores(predicted: np.ndarray, cut: float) -> np.ndarray:
    """Monotone map of predicted values into [0, 1] that flags ``predicted >= cut`` at 0.5.

    Values below the cut map to ``0.4 x`` their rank fraction among values below it (in
    ``(0, 0.4]``), values at or above it to ``0.6 + 0.4 x`` their rank fraction (in
    ``(0.6, 1]``). The map preserves the order of the predictions (so AUROC, AUPRC and the
    threshold rates at 0.5 equal those of the raw predicted values at the cut); the numbers
    are not probabilities, so calibration metrics of derived tasks are not reported.

    Parameters
    ----------
    predicted : ndarray of float
        Predicted values.
    cut : float
        The cut-point.

    Returns
    -------
    ndarray of float64
    """
    x = np.asarray(predicted, dtype=np.float64)
    out = np.empty_like(x)
    above = x >= cut
    for mask, base in ((~above, 0.0), (above, 0.6)):
        if mask.any():
            r = rankdata(x[mask], method="max")
            out[mask] = base + 0.4 * r / mask.sum()
    return out


def _numbers(frame: pd.DataFrame, column: str, what: str, source: str, row_col: str
             ) -> tuple[np.ndarray, list[Problem]]:
    raw = frame[column]
    rows = frame[row_col].to_numpy()
    missing = raw.isna().to_numpy()
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    problems = []
    if missing.any():
        problems.append(Problem(MSG_MISSING.format(what=what), source, column,
                                tuple(int(r) for r in rows[missing]),
                                "remove or fill these rows"))
    bad = np.isnan(num) & ~missing
    if bad.any():
        shown = ", ".join(dict.fromkeys(repr(v) for v in raw[bad].tolist()[:5]))
        problems.append(Problem(MSG_NOT_NUMERIC.format(what=what, values=shown), source, column,
                                tuple(int(r) for r in rows[bad])))
    inf = ~np.isfinite(num) & ~np.isnan(num)
    if inf.any():
        problems.append(Problem(MSG_NOT_FINITE.format(what=what), source, column,
                                tuple(int(r) for r in rows[inf])))
    return num, problems


def _unit_problem(task: TaskConfig, y: np.ndarray, x: np.ndarray, source: str
                  ) -> Problem | None:
    my, mx = float(np.median(np.abs(y))), float(np.median(np.abs(x)))
    if my <= 0 or mx <= 0:
        return None
    factor = mx / my
    lo, hi = float(y.min()), float(y.max())
    outside = float(np.mean((x < lo) | (x > hi)))
    if max(factor, 1.0 / factor) < UNIT_FACTOR or outside < UNIT_OUTSIDE:
        return None
    return Problem(MSG_UNITS.format(pred=mx, meas=my, factor=factor, share=outside, lo=lo,
                                    hi=hi), source, task.score, hint=HINT_UNITS)


def prepare_continuous(frame: pd.DataFrame, task: TaskConfig,
                       source_of: dict[str, tuple[str, str]], out: dict[str, np.ndarray]
                       ) -> list[Problem]:
    """Validate one continuous task and add its columns to ``out``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The joined input table (with the row-number columns named in ``source_of``).
    task : TaskConfig
        A ``kind: continuous`` task.
    source_of : dict
        Column -> (source file name, row-number column).
    out : dict
        Normalised columns; ``y:``/``p:`` of the task and of its derived cut-point tasks
        are added when the values are valid.

    Returns
    -------
    list of Problem
    """
    assert task.label is not None
    y, problems = _numbers(frame, task.label, "measured", *source_of[task.label])
    x, more = _numbers(frame, task.score, "predicted", *source_of[task.score])
    problems += more
    if problems or y.size == 0:
        return problems
    source = source_of[task.score][0]
    if np.all(x == x[0]):
        problems.append(Problem(MSG_CONSTANT.format(value=x[0]), source, task.score,
                                hint="check that the score column holds the model's output"))
    unit = _unit_problem(task, y, x, source)
    if unit is not None:
        problems.append(unit)
    for cut in task.cutpoints:
        above = int(np.sum(y >= cut))
        if above in (0, y.size):
            side = "at or above" if above == 0 else "below"
            problems.append(Problem(MSG_CUT_ONE_SIDE.format(cut=cut, task=task.name, side=side),
                                    source_of[task.label][0], task.label))
    if problems:
        return problems
    out[f"y:{task.name}"] = y
    out[f"p:{task.name}"] = x
    for cut in task.cutpoints:
        name = cut_task_name(task.name, cut)
        out[f"y:{name}"] = (y >= cut).astype(np.int8)
        out[f"p:{name}"] = cut_scores(x, cut)
    return problems

