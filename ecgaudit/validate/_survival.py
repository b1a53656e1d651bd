"""Validation of survival tasks: follow-up times, event codes, risk scores, horizons.

A survival task adds to the prepared table ``t:<task>`` (float64 follow-up time),
``e:<task>`` (int8: 1 event, 0 censored, 2 competing event), ``s:<task>`` (the risk used
for ranking, float64) and, when the score is a probability (or a logit), ``p:<task>`` (the
predicted probability of the event by the horizon).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from ecgaudit.config import AuditConfig, TaskConfig
from ecgaudit.errors import Problem

__all__ = ["survival_columns", "survival_config_problems"]

MSG_TIME_MISSING = "follow-up time is missing"
MSG_TIME_BAD = "follow-up times must be finite numbers >= 0; found {values}"
MSG_EVENT_MISSING = "event indicator is missing"
MSG_EVENT_BAD = "event values must be 1 (event) or 0 (censored){extra}; found {values}"
MSG_NO_EVENTS = "task '{task}' has no events in the whole cohort (n={n}); it cannot be audited"
MSG_HORIZON = ("horizon {h:g} is not before the longest follow-up ({t:g}) of task '{task}': "
               "no patient is observed past it")
MSG_SCORE = "scores must be finite numbers; found {values}"
MSG_SCORE_RANGE = "probability scores must lie in [0, 1]; found values from {lo:g} to {hi:g}"
HINT_RISK = ("if the score is a risk (e.g. a Cox linear predictor), set `score_type: risk` "
             "(CLI: --risk)")

def _examples(values: pd.Series, k: int = 5) -> str:
    uniq = list(dict.fromkeys(repr(v) for v in values))
    return ", ".join(uniq[:k]) + (f" (+{len(uniq) - k} more)" if len(uniq) > k else "")


def survival_config_problems(config: AuditConfig) -> list[str]:
    """Config-level rules of survival tasks (a fixed threshold; other task kinds may join)."""
    out = []
    for t in config.tasks:
        if t.kind == "survival" and config.threshold_for(t.name).rule != "fixed":
            out.append(f"task '{t.name}': survival tasks need a fixed threshold "
                       "(`threshold: {rule: fixed, value: ...}`)")
    return out


class _Rows:
    """Turns a row mask into the user-visible row numbers of one input file."""

    def __init__(self, frame: pd.DataFrame, row_col: str) -> None:
        self.numbers = frame[row_col].to_numpy()

    def __call__(self, mask: np.ndarray) -> tuple[int, ...]:
        return tuple(int(r) for r in self.numbers[mask])


def _num(frame: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raw = frame[col]
    num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    missing = raw.isna().to_numpy()
    bad = ~missing & ~np.isfinite(num)
    return num, missing, bad


def _times(frame: pd.DataFrame, task: TaskConfig, source: str, rows: _Rows
           ) -> tuple[np.ndarray, list[Problem]]:
    col = task.time or ""
    t, missing, bad = _num(frame, col)
    bad |= np.isfinite(t) & (t < 0)
    problems = []
    if missing.any():
        problems.append(Problem(MSG_TIME_MISSING, source, col, rows(missing),
                                "every row needs a follow-up time"))
    if bad.any():
        problems.append(Problem(MSG_TIME_BAD.format(values=_examples(frame.loc[bad, col])),
                                source, col, rows(bad)))
    return t, problems


def _events(frame: pd.DataFrame, task: TaskConfig, source: str, rows: _Rows
            ) -> tuple[np.ndarray, list[Problem]]:
    col = task.event or ""
    raw = frame[col]
    missing = raw.isna().to_numpy()
    text = raw.map(lambda v: "" if pd.isna(v) else str(v).strip().lower())
    text = text.str.replace(r"\.0$", "", regex=True)
    code = np.full(len(frame), -1, dtype=np.int8)
    code[text.isin(["1", "true"]).to_numpy()] = 1
    code[text.isin(["0", "false"]).to_numpy()] = 0
    extra = ""
    if task.competing_event is not None:
        comp = str(task.competing_event).strip().lower().removesuffix(".0")
        code[(text == comp).to_numpy()] = 2
        extra = f" or {task.competing_event!r} (competing event)"
    problems = []
    if missing.any():
        problems.append(Problem(MSG_EVENT_MISSING, source, col, rows(missing),
                                "every row needs 1 (event) or 0 (censored)"))
    bad = (code < 0) & ~missing
    if bad.any():
        problems.append(Problem(MSG_EVENT_BAD.format(extra=extra,
                                                     values=_examples(raw[bad])),
                                source, col, rows(bad),
                                "declare other codes with `competing_event:`"
                                if task.competing_event is None else None))
    return code, problems


def _score(frame: pd.DataFrame, task: TaskConfig, source: str, rows: _Rows
           ) -> tuple[np.ndarray, np.ndarray | None, list[Problem]]:
    s, missing, bad = _num(frame, task.score)
    bad |= missing
    problems = []
    if bad.any():
        problems.append(Problem(MSG_SCORE.format(values=_examples(frame.loc[bad, task.score])),
                                source, task.score, rows(bad)))
        return s, None, problems
    if task.score_type == "risk":
        return s, None, problems
    if task.score_type == "logit":
        return s, expit(s), problems
    out = (s < 0) | (s > 1)
    if out.any():
        problems.append(Problem(MSG_SCORE_RANGE.format(lo=float(s[out].min()),
                                                       hi=float(s[out].max())),
                                source, task.score, rows(out), HINT_RISK))
    return s, s, problems


def survival_columns(frame: pd.DataFrame, task: TaskConfig,
                     source_of: dict[str, tuple[str, str]]
                     ) -> tuple[dict[str, np.ndarray], list[Problem]]:
    """Validate one survival task's columns and return its prepared arrays.

    Parameters
    ----------
    frame : pandas.DataFrame
        The joined input table.
    task : TaskConfig
        A task with ``kind="survival"``.
    source_of : dict
        Column -> (file name, column of user-visible row numbers in ``frame``).

    Returns
    -------
    columns : dict
        ``t:``, ``e:``, ``s:`` (and ``p:`` for probability scores) arrays.
    problems : list of Problem
    """
    def src(col: str | None) -> tuple[str, _Rows]:
        name, row_col = source_of[col or ""]
        return name, _Rows(frame, row_col)

    t, problems = _times(frame, task, *src(task.time))
    e, ep = _events(frame, task, *src(task.event))
    s, p, sp = _score(frame, task, *src(task.score))
    problems += ep + sp
    if problems:
        return {}, problems
    src = source_of[task.event or ""][0]
    if not np.any(e == 1):
        problems.append(Problem(MSG_NO_EVENTS.format(task=task.name, n=e.size), src,
                                task.event))
    tmax = float(t.max()) if t.size else 0.0
    for h in task.horizons:
        if h >= tmax:
            problems.append(Problem(MSG_HORIZON.format(h=h, t=tmax, task=task.name),
                                    source_of[task.time or ""][0], task.time,
                                    hint="choose a shorter horizon"))
    cols = {f"t:{task.name}": t, f"e:{task.name}": e, f"s:{task.name}": s}
    if p is not None:
        cols[f"p:{task.name}"] = p
    return cols, problems
