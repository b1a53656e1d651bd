"""Patient-level data discipline: seeded stratified split, leakage and positives checks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ecgaudit.cohort import build_cohort
from ecgaudit.config import AttributeConfig, AuditConfig, TaskConfig
from ecgaudit.errors import InputError, Problem, ValidationError
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_GROUP

__all__ = [
    "SPLITS",
    "PatientSplit",
    "attribute_groups",
    "check_no_overlap",
    "check_positives",
    "combined_groups",
    "split_patients",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")
MAX_EXAMPLES = 5

ERR_OVERLAP = (
    "{what} overlap between the fine-tuning data ({a}) and the audit set ({b}): {count} "
    "shared {unit} (e.g. {examples}). A model must never be audited on patients it was "
    "fine-tuned on; remove them from one side or let ecgaudit split the data by patient."
)
ERR_FEW_POSITIVES = (
    "too few {kind} for task '{task}' in the {split} split: {found} (need at least {need}). "
    "Use more site data, change the split fractions, or drop the task from 'tasks'."
)


def attribute_groups(frame: pd.DataFrame, name: str, attr: AttributeConfig) -> NDArray[np.str_]:
    """Return each row's group for one attribute, exactly as the audit groups it.

    Uses :func:`ecgaudit.cohort.build_cohort` (age bands, recodes, ``Unknown``), so training
    groups (balanced sampling, group DRO, strata) are the audit's groups.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows.
    name : str
        Attribute name.
    attr : AttributeConfig
        Its config.

    Returns
    -------
    numpy.ndarray of str
        One group label per row.

    Raises
    ------
    InputError
        If the attribute's column is missing.
    """
    column = attr.column or name
    if column not in frame.columns:
        raise InputError(
            f"attribute '{name}': column '{column}' is not in the metadata; columns: "
            f"{sorted(map(str, frame.columns))}"
        )
    config = AuditConfig(
        tasks=(TaskConfig(name="_", label="_", score="_"),),
        attributes={name: attr.model_copy(update={"reference": None})},
        intersections="none",
    )
    grouping = build_cohort(frame.reset_index(drop=True), config).grouping(name)
    return np.asarray(grouping.groups, dtype=str)[grouping.codes]


def combined_groups(
    frame: pd.DataFrame, attributes: Mapping[str, AttributeConfig]
) -> NDArray[np.str_]:
    """Return each row's intersection group over several attributes (``a & b``)."""
    parts = [attribute_groups(frame, n, a) for n, a in attributes.items()]
    if not parts:
        return np.full(len(frame), OVERALL_GROUP, dtype=str)
    out = parts[0].astype(object)
    for p in parts[1:]:
        out = out + INTERSECTION_SEP + p.astype(object)
    return out.astype(str)


@dataclass(frozen=True)
class PatientSplit:
    """Per-row split assignment.

    Attributes
    ----------
    split : numpy.ndarray of str
        ``"train"``, ``"val"`` or ``"test"`` for each row of the split frame.
    seed : int
        The seed used.
    n_patients : dict
        Patients per split.
    strata : int
        Number of strata used.
    """

    split: NDArray[np.str_]
    seed: int
    n_patients: dict[str, int]
    strata: int

    def mask(self, name: str) -> NDArray[np.bool_]:
        """Return the boolean row mask of one split."""
        return np.asarray(self.split == name)


def _patient_ids(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        raise InputError(
            f"patient column '{column}' is not in the metadata; set 'patient_column' in the "
            "finetune config (a split by record would leak patients between train and test)"
        )
    ids = frame[column]
    bad = np.flatnonzero(ids.isna().to_numpy())
    if bad.size:
        raise ValidationError([Problem(
            "missing patient id", column=column, rows=tuple(int(r) + 1 for r in bad),
            hint="every record needs a patient id for a patient-level split",
        )])
    return ids.astype("string")


def split_patients(
    frame: pd.DataFrame,
    *,
    patient_column: str,
    label_columns: Sequence[str],
    strata: Mapping[str, NDArray[np.str_]] | None = None,
    fractions: tuple[float, float, float] = (0.5, 0.15, 0.35),
    seed: int = 0,
) -> PatientSplit:
    """Split rows into train / validation / test by patient, seeded and stratified.

    Each patient's stratum is the rarest task it is positive for (or "negative") combined
    with its attribute groups (from its first record). Strata smaller than the number of
    patients needed to place one in every split are pooled. Patients are shuffled within
    strata and dealt out by largest deficit, so every stratum follows the fractions to
    within one patient per split.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per record.
    patient_column : str
        Column with the patient id.
    label_columns : sequence of str
        Binary label columns (0/1).
    strata : mapping of str to array, optional
        Extra per-row group labels to stratify by (e.g. sex).
    fractions : tuple of float
        Train, validation and test fractions (sum 1).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    PatientSplit
    """
    pid = _patient_ids(frame, patient_column).to_numpy(dtype=object)
    codes, uniq = pd.factorize(pid, sort=True)
    n_pat = len(uniq)
    labels = np.zeros((n_pat, len(label_columns)), dtype=bool)
    for j, col in enumerate(label_columns):
        y = pd.to_numeric(frame[col], errors="coerce").fillna(0).to_numpy() > 0
        np.logical_or.at(labels[:, j], codes, y)
    prevalence = labels.mean(axis=0) if n_pat else np.zeros(len(label_columns))
    order = np.argsort(prevalence, kind="stable")
    first_row = np.full(n_pat, -1)
    first_row[codes[::-1]] = np.arange(len(codes))[::-1]
    keys = []
    for p in range(n_pat):
        pos = [label_columns[j] for j in order if labels[p, j]]
        key = [pos[0] if pos else "negative"]
        for values in (strata or {}).values():
            key.append(str(values[first_row[p]]))
        keys.append("|".join(key))
    key_arr = np.array(keys, dtype=object)
    positive = [f for f in fractions if f > 0]
    min_size = math.ceil(1.0 / min(positive)) if positive else 1
    uniq_keys, counts = np.unique(key_arr, return_counts=True)
    small = set(uniq_keys[counts < min_size].tolist())
    key_arr = np.array(["~pooled" if k in small else k for k in key_arr], dtype=object)
    rng = np.random.default_rng(seed)
    sequence: list[int] = []
    stratum_names = sorted(set(key_arr.tolist()))
    for k in stratum_names:
        members = np.flatnonzero(key_arr == k)
        sequence.extend(rng.permutation(members).tolist())
    frac = np.asarray(fractions, dtype=float)
    assigned = np.empty(n_pat, dtype=object)
    counts_split = np.zeros(3)
    for i, p in enumerate(sequence):
        k = int(np.argmax(frac * (i + 1) - counts_split))
        assigned[p] = SPLITS[k]
        counts_split[k] += 1
    row_split = assigned[codes].astype(str)
    return PatientSplit(
        split=row_split,
        seed=seed,
        n_patients={s: int(np.sum(assigned == s)) for s in SPLITS},
        strata=len(stratum_names),
    )


def _examples(values: Sequence[object]) -> str:
    shown = ", ".join(str(v) for v in list(values)[:MAX_EXAMPLES])
    extra = len(values) - MAX_EXAMPLES
    return f"{shown} (+{extra} more)" if extra > 0 else shown


def check_no_overlap(
    finetune: pd.DataFrame,
    audit: pd.DataFrame,
    *,
    id_column: str,
    patient_column: str,
    finetune_name: str = "fine-tuning rows",
    audit_name: str = "audit rows",
) -> None:
    """Raise if any record or patient appears both in the fine-tuning and the audit data.

    Parameters
    ----------
    finetune, audit : pandas.DataFrame
        The two sets of rows.
    id_column, patient_column : str
        Record and patient id columns.
    finetune_name, audit_name : str
        Names used in the message.

    Raises
    ------
    InputError
        Naming the number of overlapping ids and a few examples.
    """
    for what, unit, col in (("record", "record ids", id_column),
                            ("patient", "patient ids", patient_column)):
        if col not in finetune.columns or col not in audit.columns:
            raise InputError(f"column '{col}' is needed on both sides of the leakage check")
        a = set(finetune[col].dropna().astype(str))
        b = set(audit[col].dropna().astype(str))
        shared = sorted(a & b)
        if shared:
            raise InputError(ERR_OVERLAP.format(
                what=what.capitalize(), a=finetune_name, b=audit_name, count=len(shared),
                unit=unit, examples=_examples(shared),
            ))


def check_positives(
    frame: pd.DataFrame,
    split: PatientSplit,
    label_columns: Mapping[str, str],
    minimum: Mapping[str, int],
) -> dict[str, dict[str, int]]:
    """Check that every split has enough positives and negatives for every task.

    Parameters
    ----------
    frame : pandas.DataFrame
        The split rows.
    split : PatientSplit
        The assignment.
    label_columns : mapping
        Task name -> label column.
    minimum : mapping
        Split name -> minimum positives (and negatives) required; 0 skips the split.

    Returns
    -------
    dict
        ``{split: {task: positives}}``.

    Raises
    ------
    ValidationError
        Listing every task x split short of data, before any training starts.
    """
    problems: list[Problem] = []
    counts: dict[str, dict[str, int]] = {}
    for name in SPLITS:
        mask = split.mask(name)
        counts[name] = {}
        for task, col in label_columns.items():
            y = pd.to_numeric(frame.loc[mask, col], errors="coerce").fillna(0).to_numpy() > 0
            pos, neg = int(y.sum()), int((~y).sum())
            counts[name][task] = pos
            need = int(minimum.get(name, 0))
            if need <= 0:
                continue
            for kind, found in (("positives", pos), ("negatives", neg)):
                if found < need:
                    problems.append(Problem(ERR_FEW_POSITIVES.format(
                        kind=kind, task=task, split=name, found=found, need=need,
                    ), column=col))
    if problems:
        raise ValidationError(problems)
    return counts
