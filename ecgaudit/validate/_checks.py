"""Check, join and normalise the input tables; report every problem at once.

Rows are identified as users see them: data row ``k`` is the ``k``-th row after the header
(so line ``k + 1`` of a CSV file).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from ecgaudit._text import id_examples
from ecgaudit.config import AuditConfig, TaskConfig
from ecgaudit.errors import JoinError, Problem, ValidationError, format_rows
from ecgaudit.io import InputTable
from ecgaudit.validate._continuous import prepare_continuous
from ecgaudit.validate._survival import survival_columns

__all__ = ["PreparedData", "prepare"]

ROW_PRED = "__row_predictions"
ROW_META = "__row_metadata"

MSG_MISSING_COLUMN = "column not found"
MSG_DUPLICATE_IDS = "duplicate id values: each id must appear once"
MSG_MISSING_IDS = "missing {what} values"
MSG_LABEL_MISSING = "label is missing"
MSG_LABEL_NOT_BINARY = "labels must be 0/1 (or true/false); found value(s) {values}"
MSG_LABEL_STRINGS = "text labels {values} but no positive value is declared"
MSG_SCORE_NOT_NUMERIC = "scores must be numbers; found {values}"
MSG_SCORE_NOT_FINITE = "scores must be finite numbers; found NaN or infinity"
MSG_SCORE_RANGE = "scores must lie in [0, 1]; found values from {lo:g} to {hi:g}"
MSG_ONE_CLASS = "task '{task}' has only {cls} in the whole cohort (n={n}); it cannot be audited"
MSG_AGE_UNPARSEABLE = "age values that are not numbers: {values}"
MSG_AGE_IMPOSSIBLE = "impossible ages outside [{lo:g}, {hi:g}] years: {values}"
#: Literal codes that look like "missing" (read as text; only empty cells are missing).
NA_CODES = frozenset({"na", "n/a", "none", "null", "nan", "#n/a"})
HINT_SWAP = (
    "the label column looks continuous and the score column binary: "
    "did you swap label and score?"
)
HINT_POSITIVE = "declare which value is positive with `positive_label:` in the task config"
HINT_LOGIT = "if these are logits, set `score_type: logit` for this task"


@dataclass(frozen=True)
class PreparedData:
    """The validated, joined and normalised audit table.

    Attributes
    ----------
    frame : pandas.DataFrame
        Attribute columns as given, plus ``y:<task>`` (int8 0/1) and ``p:<task>`` (float64
        probabilities, logits already passed through the sigmoid) for every task.
    n_unmatched_metadata : int
        Metadata rows without predictions (only non-zero when explicitly allowed).
    """

    frame: pd.DataFrame
    n_unmatched_metadata: int = 0


def _examples(values: Iterable[object], k: int = 5) -> str:
    uniq = list(dict.fromkeys(repr(v) for v in values))
    more = f" (+{len(uniq) - k} more)" if len(uniq) > k else ""
    return ", ".join(uniq[:k]) + more


def _suggest(column: str, available: list[str]) -> str:
    close = difflib.get_close_matches(column, available, n=3, cutoff=0.6)
    shown = ", ".join(available[:30]) + (" ..." if len(available) > 30 else "")
    hint = f"available columns: {shown}"
    if close:
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " + hint
    return hint


def _rows(frame: pd.DataFrame, mask: np.ndarray, row_col: str) -> tuple[int, ...]:
    return tuple(int(r) for r in frame.loc[mask, row_col].to_numpy())


def _required(config: AuditConfig) -> list[str]:
    cols: list[str] = []
    for t in config.tasks:
        cols += [c for c in (t.label, t.score, t.time, t.event) if c]
    cols += [a.column or name for name, a in config.attributes.items()]
    cols += [a.column or name for name, a in config.continuous_axes.items()]  # docs/views.md
    if config.patient_column:
        cols.append(config.patient_column)
    for th in [config.threshold, *config.task_thresholds.values()]:
        if th.derive_on is not None:
            cols.append(th.derive_on.column)
    return list(dict.fromkeys(cols))


def _check_columns(tables: list[InputTable], config: AuditConfig) -> list[Problem]:
    problems = []
    names = " / ".join(t.name for t in tables)
    available = list(dict.fromkeys(c for t in tables for c in t.frame.columns))
    if len(tables) == 2 or config.id_column:
        for t in tables:
            if config.id_column is None:
                problems.append(Problem(
                    "two input files need an id column to join them",
                    source=t.name,
                    hint="pass --id COLUMN (or `id_column:` in the config)",
                ))
                break
            if config.id_column not in t.frame.columns:
                problems.append(Problem(
                    f"id {MSG_MISSING_COLUMN}", source=t.name, column=config.id_column,
                    hint=_suggest(config.id_column, list(t.frame.columns)),
                ))
    for col in _required(config):
        if col not in available:
            problems.append(Problem(MSG_MISSING_COLUMN, source=names, column=col,
                                    hint=_suggest(col, available)))
    return problems


def _na_codes(values: pd.Series) -> np.ndarray:
    """Rows holding a literal missing-value code such as ``NA`` (read as text, not NaN)."""
    if values.dtype != object and not isinstance(values.dtype, pd.StringDtype):
        return np.zeros(len(values), dtype=bool)
    return values.map(lambda v: isinstance(v, str) and v.strip().lower() in NA_CODES
                      ).to_numpy(dtype=bool)


def _check_missing(frame: pd.DataFrame, column: str, what: str, source: str,
                   row_col: str) -> list[Problem]:
    missing = frame[column].isna().to_numpy() | _na_codes(frame[column])
    if not missing.any():
        return []
    return [Problem(MSG_MISSING_IDS.format(what=what), source, column,
                    _rows(frame, missing, row_col),
                    "every row needs one (codes such as 'NA' are not ids)")]


def _check_duplicates(table: InputTable, id_col: str) -> list[Problem]:
    ids = table.frame[id_col]
    if ids.isna().any():
        rows = tuple(int(i) + 1 for i in np.flatnonzero(ids.isna().to_numpy()))
        return [Problem(MSG_MISSING_IDS.format(what="id"), table.name, id_col, rows,
                        "every row needs an id")]
    dup = ids.duplicated(keep=False).to_numpy()
    if not dup.any():
        return []
    rows = tuple(int(i) + 1 for i in np.flatnonzero(dup))
    return [Problem(f"{MSG_DUPLICATE_IDS} ({id_examples(ids[dup])})", source=table.name,
                    column=id_col, rows=rows)]


def _positions(mask: pd.Series) -> list[int]:
    return [int(i) + 1 for i in np.flatnonzero(mask.to_numpy())]


def _join(pred: InputTable, meta: InputTable, config: AuditConfig) -> tuple[pd.DataFrame, int]:
    id_col = config.id_column or ""
    left = pred.frame.assign(**{ROW_PRED: np.arange(1, len(pred.frame) + 1)})
    right = meta.frame.assign(**{ROW_META: np.arange(1, len(meta.frame) + 1)})
    overlap = [c for c in right.columns if c in left.columns and c != id_col]
    right = right.drop(columns=overlap)
    lk, rk = left[id_col].astype(str), right[id_col].astype(str)
    no_meta = ~lk.isin(set(rk))
    no_pred = ~rk.isin(set(lk))
    if no_meta.any() or (no_pred.any() and not config.join.allow_extra_metadata):
        msg = (
            f"joining '{pred.name}' ({len(left)} rows) with '{meta.name}' ({len(right)} rows) "
            f"on '{id_col}': {int(no_meta.sum())} prediction rows have no metadata"
        )
        if no_meta.any():
            msg += (f" ('{pred.name}' rows {format_rows(_positions(no_meta))}; "
                    f"{id_examples(left.loc[no_meta.to_numpy(), id_col])})")
        msg += f"; {int(no_pred.sum())} metadata rows have no predictions"
        if no_pred.any():
            msg += (f" ('{meta.name}' rows {format_rows(_positions(no_pred))}; "
                    f"{id_examples(right.loc[no_pred.to_numpy(), id_col])})")
        msg += (". Ids are compared as text ('00001' is not '1'). Every row must match; fix "
                "the files, or set `join: {allow_extra_metadata: true}` if the metadata "
                "deliberately covers more patients.")
        raise JoinError(msg)
    right = right.loc[~no_pred.to_numpy()]
    merged = left.assign(__key=lk).merge(
        right.drop(columns=[id_col]).assign(__key=rk[~no_pred]), on="__key", how="left",
        validate="one_to_one",
    ).drop(columns="__key")
    return merged, int(no_pred.sum())


def _labels(frame: pd.DataFrame, task: TaskConfig, source: str, row_col: str,
            score: pd.Series) -> tuple[np.ndarray | None, list[Problem]]:
    raw = frame[task.label]
    if task.positive_label is None and isinstance(raw.dtype, np.dtype) and (
            raw.dtype.kind in "fiu"):
        values = raw.to_numpy()
        if bool(np.all((values == 0) | (values == 1))):  # 0/1 numbers: nothing to report
            return values.astype(np.int8), []
    missing = raw.isna().to_numpy()
    problems = []
    if missing.any():
        problems.append(Problem(MSG_LABEL_MISSING, source, task.label,
                                _rows(frame, missing, row_col), "remove or fill these rows"))
    present = raw[~missing]
    if task.positive_label is not None:
        pos = str(task.positive_label)
        y = raw.map(lambda v: str(v) == pos or (not isinstance(v, str) and str(v) == pos + ".0"))
        return (None if problems else y.to_numpy(dtype=np.int8)), problems
    if pd.api.types.is_bool_dtype(present):
        return (None if problems else present.to_numpy(dtype=np.int8)), problems
    numeric = pd.to_numeric(present, errors="coerce")
    text_mask = numeric.isna().to_numpy()
    if text_mask.any():
        lower = {str(v).strip().lower() for v in present[text_mask]}
        if lower <= {"true", "false"}:
            mapped = raw.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
            return (None if problems else mapped.to_numpy(dtype=np.int8)), problems
        bad = np.zeros(len(frame), dtype=bool)
        bad[np.flatnonzero(~missing)[text_mask]] = True
        if lower <= NA_CODES:
            problems.append(Problem(
                f"{MSG_LABEL_MISSING} (written as {_examples(present[text_mask])})", source,
                task.label, _rows(frame, bad, row_col),
                "remove or fill these rows (only empty cells are read as missing)"))
            return None, problems
        problems.append(Problem(MSG_LABEL_STRINGS.format(values=_examples(present[text_mask])),
                                source, task.label, _rows(frame, bad, row_col), HINT_POSITIVE))
        return None, problems
    nonbin = ~numeric.isin([0, 1]).to_numpy()
    if nonbin.any():
        bad = np.zeros(len(frame), dtype=bool)
        bad[np.flatnonzero(~missing)[nonbin]] = True
        sc = pd.to_numeric(score, errors="coerce")
        swapped = sc.dropna().isin([0, 1]).all() and not numeric.isin([0, 1]).all()
        problems.append(Problem(MSG_LABEL_NOT_BINARY.format(values=_examples(numeric[nonbin])),
                                source, task.label, _rows(frame, bad, row_col),
                                HINT_SWAP if swapped else None))
        return None, problems
    if problems:
        return None, problems
    return numeric.to_numpy(dtype=np.int8), problems


def _scores(frame: pd.DataFrame, task: TaskConfig, source: str,
            row_col: str) -> tuple[np.ndarray | None, list[Problem]]:
    raw = frame[task.score]
    if isinstance(raw.dtype, np.dtype) and raw.dtype.kind in "fiu":  # numbers already
        num = raw.to_numpy(dtype=float)
    else:
        num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    not_num = np.isnan(num) & raw.notna().to_numpy()
    problems = []
    if not_num.any():
        problems.append(Problem(MSG_SCORE_NOT_NUMERIC.format(values=_examples(raw[not_num])),
                                source, task.score, _rows(frame, not_num, row_col)))
    nonfinite = ~np.isfinite(num) & ~not_num
    if nonfinite.any():
        problems.append(Problem(MSG_SCORE_NOT_FINITE, source, task.score,
                                _rows(frame, nonfinite, row_col),
                                "the model produced invalid outputs for these rows"))
    if task.score_type == "logit":
        return (None if problems else expit(num)), problems
    out = np.isfinite(num) & ((num < 0) | (num > 1))
    if out.any():
        problems.append(Problem(
            MSG_SCORE_RANGE.format(lo=float(np.nanmin(num[out])), hi=float(np.nanmax(num[out]))),
            source, task.score, _rows(frame, out, row_col), HINT_LOGIT))
    return (None if problems else num), problems


def _stripped_text(values: pd.Series) -> pd.Series:
    """``str(v).strip()`` of every value ("" for missing), rendered once per distinct value."""
    codes, texts = _distinct_text(values)
    return pd.Series(texts[codes], index=values.index, dtype=object)


def _distinct_text(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_stripped_text` as row codes and the texts of the distinct values.

    Returns
    -------
    tuple of ndarray
        Row codes and the rendered texts: row ``i`` renders as ``texts[codes[i]]``.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):  # each category rendered as its rows
        cats = values.cat.categories.to_numpy(dtype=object)
        rendered = np.array(["" if pd.isna(v) else str(v).strip() for v in cats] + [""],
                            dtype=object)
        codes = values.cat.codes.to_numpy().astype(np.intp)
        codes[codes < 0] = cats.size  # missing rows: ""
        return codes, rendered
    raw = values.to_numpy()
    if not isinstance(values.dtype, np.dtype) or (
            raw.dtype == object and pd.api.types.infer_dtype(raw, skipna=True) != "string"):
        # Extension dtypes and mixed objects (7 == 7.0 == True share a code but render
        # differently): row by row.
        text = values.map(lambda v: "" if pd.isna(v) else str(v).strip()).to_numpy(object)
        codes, texts = pd.factorize(text, use_na_sentinel=False)
        return codes, np.asarray(texts, dtype=object)
    # Floats are told apart by bit pattern: 0.0 and -0.0 are equal but render differently.
    keys = raw.view(np.int64) if raw.dtype == np.float64 else raw
    codes = pd.factorize(keys, use_na_sentinel=False)[0]
    index = np.empty(int(codes.max()) + 1 if codes.size else 0, dtype=np.intp)
    index[codes] = np.arange(codes.size)  # a row of each code (its rows share one key)
    rendered = np.array(["" if pd.isna(v) else str(v).strip() for v in raw[index]],
                        dtype=object)
    return codes, rendered


def _ages(frame: pd.DataFrame, config: AuditConfig, source_of: dict[str, tuple[str, str]]
          ) -> list[Problem]:
    problems = []
    for name, spec in config.attributes.items():
        if spec.kind != "age":
            continue
        col = spec.column or name
        source, row_col = source_of[col]
        codes, texts = _distinct_text(frame[col])
        text = pd.Series(texts, dtype=object)  # parsed once per distinct value
        text = text.replace(spec.recode) if spec.recode else text
        gone = text.isin(["", *spec.missing_values]).to_numpy()
        parsed = pd.to_numeric(text.where(~gone), errors="coerce").to_numpy(dtype=float)
        missing, num = gone[codes], parsed[codes]
        unparseable = np.isnan(num) & ~missing
        if unparseable.any():
            problems.append(Problem(
                MSG_AGE_UNPARSEABLE.format(values=_examples(frame.loc[unparseable, col])),
                source, col, _rows(frame, unparseable, row_col),
                "give ages in years as numbers; leave unknown ages empty, or declare codes "
                "such as 'NA' unknown with `missing_values: [NA]` for this attribute"))
        bad = (num < spec.min_age) | (num > spec.max_age)
        if bad.any():
            problems.append(Problem(
                MSG_AGE_IMPOSSIBLE.format(lo=spec.min_age, hi=spec.max_age,
                                          values=_examples(num[bad])),
                source, col, _rows(frame, bad, row_col),
                "fix the values, or map coded values with `recode:` (e.g. {'300': '90'})"))
    return problems


def prepare(predictions: InputTable, config: AuditConfig,
            metadata: InputTable | None = None, *, one_class_ok: bool = False) -> PreparedData:
    """Validate the inputs, join them and normalise labels and scores.

    Parameters
    ----------
    predictions : InputTable
        Predictions (and possibly demographics).
    config : AuditConfig
        The audit configuration.
    metadata : InputTable, optional
        Demographics joined on ``config.id_column``.
    one_class_ok : bool
        Accept a task with one class only (one site's share of a pooled cohort).

    Returns
    -------
    PreparedData

    Raises
    ------
    ValidationError
        Listing every problem found (missing columns first; then values).
    JoinError
        If the two tables do not match one-to-one.
    """
    tables = [predictions] + ([metadata] if metadata is not None else [])
    problems = _check_columns(tables, config)
    if problems:
        raise ValidationError(problems)
    if config.id_column:
        for t in tables:
            problems += _check_duplicates(t, config.id_column)
        if problems:
            raise ValidationError(problems)
    extra = 0
    if metadata is not None:
        frame, extra = _join(predictions, metadata, config)
    else:
        frame = predictions.frame.assign(**{ROW_PRED: np.arange(1, len(predictions.frame) + 1)})
    source_of = {c: (predictions.name, ROW_PRED) for c in predictions.frame.columns}
    if metadata is not None:
        for c in metadata.frame.columns:
            source_of.setdefault(c, (metadata.name, ROW_META))
    out = {}
    for task in config.tasks:
        if task.kind == "continuous":  # measured/predicted numbers: validate/_continuous.py
            problems += prepare_continuous(frame, task, source_of, out)
            continue
        if task.kind == "survival":  # times, events, risks: validate/_survival.py
            cols, sprobs = survival_columns(frame, task, source_of)
            problems, out = problems + sprobs, {**out, **cols}
            continue
        p, probs = _scores(frame, task, *source_of[task.score])
        y, lprobs = _labels(frame, task, *source_of[task.label], frame[task.score])
        problems += lprobs + probs
        if y is not None and p is not None:
            n_pos = int(y.sum())
            if n_pos in (0, y.size) and not one_class_ok:
                cls = "positive cases" if n_pos else "negative cases"
                problems.append(Problem(MSG_ONE_CLASS.format(task=task.name, cls=cls, n=y.size),
                                        source_of[task.label][0], task.label))
            out[f"y:{task.name}"] = y
            out[f"p:{task.name}"] = p
    problems += _ages(frame, config, source_of)
    if config.patient_column:
        problems += _check_missing(frame, config.patient_column, "patient id",
                                   *source_of[config.patient_column])
    if problems:
        raise ValidationError(problems)
    keep = [c for c in frame.columns if c not in (ROW_PRED, ROW_META)]
    # copy=False: the checked arrays (often views of the input columns) are not copied.
    result = pd.concat([frame[keep].reset_index(drop=True), pd.DataFrame(out, copy=False)],
                       axis=1)
    return PreparedData(frame=result, n_unmatched_metadata=extra)
