"""Turn attribute columns into group codes, intersections and reference groups.

Rules
-----
* Missing values (NaN, empty strings, configured ``missing_values``) form an explicit
  ``Unknown`` group, so the groups of every attribute add up to the overall n.
* Age is cut into bands at the configured lower edges (default ``<40, 40-59, 60-79, 80+``).
* Intersections default to every pair of attributes (``intersections: pairs``); ``all`` adds
  every deeper combination; an explicit list names the combinations.
* Reference group: the configured one, else the largest group that is not ``Unknown``
  (ties broken by group order). An intersection's reference is the combination of its
  components' references when that combination occurs, else its largest group.

Columns are factorised before rendering, so every distinct raw value is rendered, recoded
and named once (floats told apart by bit pattern, text only when every value is a ``str``);
other column types, and missing cells, are rendered row by row. The groups, their order and
the codes are those of rendering every row.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecgaudit._text import visible
from ecgaudit.config import AttributeConfig, AuditConfig
from ecgaudit.errors import ConfigError
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE, OVERALL_GROUP, UNKNOWN_GROUP

__all__ = ["Cohort", "Grouping", "age_band_labels", "build_cohort"]


@dataclass(frozen=True)
class Grouping:
    """One way of splitting the cohort: an attribute or an intersection of attributes.

    Attributes
    ----------
    attribute : str
        ``"overall"``, an attribute name, or names joined by ``" & "``.
    codes : ndarray of int32
        Group index of every row.
    groups : tuple of str
        Group names, in display order.
    reference : int or None
        Index of the reference group (None for overall).
    components : tuple of str
        The attribute names it combines (empty for overall).
    """

    attribute: str
    codes: np.ndarray
    groups: tuple[str, ...]
    reference: int | None
    components: tuple[str, ...] = ()

    def sizes(self) -> np.ndarray:
        """Return the number of rows of every group."""
        return np.bincount(self.codes, minlength=len(self.groups))


@dataclass(frozen=True)
class Cohort:
    """All groupings of an audit, overall first, then attributes, then intersections."""

    groupings: tuple[Grouping, ...]
    n: int

    def grouping(self, attribute: str) -> Grouping:
        """Return the grouping called ``attribute``."""
        for g in self.groupings:
            if g.attribute == attribute:
                return g
        raise KeyError(attribute)

    def references(self) -> dict[str, str]:
        """Return ``{attribute: reference group name}``."""
        return {
            g.attribute: g.groups[g.reference] for g in self.groupings if g.reference is not None
        }


def _fmt_edge(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def age_band_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the bands cut at ``edges``: ``(40, 60, 80)`` -> ``<40, 40-59, 60-79, 80+``.

    Parameters
    ----------
    edges : sequence of float
        Strictly increasing lower edges.

    Returns
    -------
    list of str
        ``len(edges) + 1`` labels.
    """
    labels = [f"<{_fmt_edge(edges[0])}"]
    for lo, hi in itertools.pairwise(edges):
        if float(lo).is_integer() and float(hi).is_integer():
            labels.append(f"{int(lo)}-{int(hi) - 1}")
        else:
            labels.append(f"{_fmt_edge(lo)}-<{_fmt_edge(hi)}")
    labels.append(f"{_fmt_edge(edges[-1])}+")
    return labels


def _as_text(values: pd.Series) -> pd.Series:
    """Render raw values as group names (integral floats like 1.0 become '1')."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(str)
    if pd.api.types.is_numeric_dtype(values):
        nums = pd.to_numeric(values, errors="coerce")
        finite = nums.dropna()
        if len(finite) and np.all(np.mod(finite, 1) == 0):
            out = nums.map(lambda v: "" if pd.isna(v) else str(int(v)))
        else:
            out = nums.map(lambda v: "" if pd.isna(v) else f"{v:g}")
        return out.astype(object)
    return values.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v))
                      else str(v).strip()).astype(object)


def _distinct(values: pd.Series) -> tuple[np.ndarray, pd.Series, np.ndarray] | None:
    """Factorise raw values exactly enough for :func:`_as_text`, or None if unsupported.

    Returns row codes (``-1`` on missing rows), the distinct values as a Series of the
    column's dtype, and the missing-row mask. Floats are told apart by bit pattern (``0.0``
    and ``-0.0`` may render differently); text columns only when every present value is a
    ``str``, where equal values are identical strings.
    """
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        arr = values.to_numpy()
        if dtype.kind == "f":
            codes, bits = pd.factorize(arr.view(f"u{arr.itemsize}"))
            uniq = bits.view(dtype)
        else:
            codes, uniq = pd.factorize(arr)
        return codes, pd.Series(uniq, dtype=dtype), np.zeros(len(values), dtype=bool)
    is_object = pd.api.types.is_object_dtype(dtype)
    if not (is_object or isinstance(dtype, pd.StringDtype)):
        return None
    na = values.isna().to_numpy()
    complete = not na.any()  # no missing row: no masked copy of the column
    present = values if complete else values[~na]
    if is_object and pd.api.types.infer_dtype(present, skipna=False) not in (
            "string", "empty"):
        return None
    if complete:
        codes, uniq = pd.factorize(present)
    else:
        codes = np.full(len(values), -1, dtype=np.intp)
        codes[~na], uniq = pd.factorize(present)
    return codes, pd.Series(np.asarray(uniq, dtype=object), dtype=dtype), na


def _text_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Factorised :func:`_as_text`: ``_as_text(values)[i] == texts[codes[i]]`` for every row.

    Every distinct raw value is rendered once. Distinct texts never share a code (a text may
    own several) and every code occurs; missing rows are rendered row by row as before.
    """
    distinct = _distinct(values)
    if distinct is None:
        text = _as_text(values).to_numpy(dtype=object)
        codes, texts = pd.factorize(text, use_na_sentinel=False)
        return codes, np.asarray(texts, dtype=object)
    codes, uniq, na = distinct
    texts = _as_text(uniq).to_numpy(dtype=object)
    if na.any():
        na_codes, na_texts = pd.factorize(_as_text(values[na]).to_numpy(dtype=object),
                                          use_na_sentinel=False)
        codes[na] = na_codes + len(texts)
        texts = np.concatenate([texts, np.asarray(na_texts, dtype=object)])
    return codes, texts


def _sort_key(name: str) -> tuple[int, float, str, str]:
    # The last element breaks ties between names equal up to case ("White", "white"), so
    # the group order never depends on set iteration order.
    try:
        return (0, float(name), name, name)
    except ValueError:
        return (1, 0.0, name.casefold(), name)


def _categorical(values: pd.Series, spec: AttributeConfig) -> tuple[np.ndarray, tuple[str, ...]]:
    codes, texts = _text_codes(values)
    missing = {"", *spec.missing_values}
    names = [UNKNOWN_GROUP if v in missing else spec.recode.get(v, v) for v in texts]
    names = [UNKNOWN_GROUP if v in missing else v for v in names]
    known = sorted({v for v in names if v != UNKNOWN_GROUP}, key=_sort_key)
    has_unknown = any(v == UNKNOWN_GROUP for v in names)
    groups = (*known, UNKNOWN_GROUP) if has_unknown else tuple(known)
    index = {g: i for i, g in enumerate(groups)}
    lookup = np.array([index[v] for v in names], dtype=np.int32)
    return lookup[codes], groups


def _age(values: pd.Series, spec: AttributeConfig) -> tuple[np.ndarray, tuple[str, ...]]:
    edges = spec.bands or ()
    labels = age_band_labels(edges)
    rows, texts = _text_codes(values)
    recoded = pd.Series(texts, dtype=object).map(lambda v: spec.recode.get(v, v))
    missing = recoded.isin(["", *spec.missing_values])
    age = pd.to_numeric(recoded.where(~missing), errors="coerce").to_numpy(dtype=float)
    band = np.searchsorted(np.asarray(edges, dtype=float), age, side="right")
    unknown = np.isnan(age)
    present = np.unique(band[~unknown])
    groups = [labels[i] for i in present]
    remap = np.full(len(labels) + 1, -1, dtype=np.int32)
    remap[present] = np.arange(present.size, dtype=np.int32)
    codes = remap[band]
    if unknown.any():
        codes[unknown] = len(groups)
        groups.append(UNKNOWN_GROUP)
    return codes.astype(np.int32)[rows], tuple(groups)


def _reference(
    name: str, groups: tuple[str, ...], sizes: np.ndarray, wanted: str | None
) -> int:
    if wanted is not None:
        if wanted in groups:
            return groups.index(wanted)
        close = difflib.get_close_matches(wanted, list(groups), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(
            f"reference group '{wanted}' of attribute '{name}' does not occur in the data; "
            f"groups present: {list(groups)}.{hint}"
        )
    order = [i for i, g in enumerate(groups) if g != UNKNOWN_GROUP] or list(range(len(groups)))
    return max(order, key=lambda i: (sizes[i], -i))


def _combine(parts: Sequence[Grouping]) -> Grouping:
    radix = [len(p.groups) for p in parts]
    key = np.zeros(parts[0].codes.size, dtype=np.int64)
    for p, r in zip(parts, radix):
        key = key * r + p.codes
    space = math.prod(radix)
    if space <= max(4 * key.size, 1 << 16):
        # np.unique(key, return_inverse=True) by counting: sorted present keys, their ranks.
        present = np.flatnonzero(np.bincount(key, minlength=space))
        rank = np.zeros(space, dtype=np.int64)
        rank[present] = np.arange(present.size)
        codes = rank[key]
    else:
        present, codes = np.unique(key, return_inverse=True)
    names = []
    for k in present:
        idx = []
        for r in reversed(radix):
            idx.append(int(k % r))
            k //= r
        idx.reverse()
        names.append(INTERSECTION_SEP.join(p.groups[i] for p, i in zip(parts, idx)))
    groups = tuple(names)
    sizes = np.bincount(codes, minlength=len(groups))
    ref_name = INTERSECTION_SEP.join(
        p.groups[p.reference] for p in parts if p.reference is not None
    )
    ref = groups.index(ref_name) if ref_name in groups else _reference("", groups, sizes, None)
    return Grouping(
        attribute=INTERSECTION_SEP.join(p.attribute for p in parts),
        codes=codes.astype(np.int32),
        groups=groups,
        reference=ref,
        components=tuple(p.attribute for p in parts),
    )


def _combinations(config: AuditConfig) -> list[tuple[str, ...]]:
    names = list(config.attributes)
    if isinstance(config.intersections, list):
        return [tuple(c) for c in config.intersections]
    if config.intersections == "none":
        return []
    depth = 2 if config.intersections == "pairs" else len(names)
    return [c for k in range(2, depth + 1) for c in itertools.combinations(names, k)]


MSG_TOO_MANY_GROUPS = (
    "attribute '{name}' (column '{column}') has {n} distinct groups, more than the limit of "
    "{limit} (`max_groups`); an audit of that many groups takes very long and no group is "
    "large enough to judge. Bin or merge the values (`recode:` in the attribute's config, "
    "e.g. map rare values to 'Other'), audit another column, or raise `max_groups:` in the "
    "config"
)


def _check_group_count(name: str, column: str, n: int, limit: int) -> None:
    """Stop early, with a hint, when an attribute has more groups than ``max_groups``."""
    if n > limit:
        raise ConfigError(MSG_TOO_MANY_GROUPS.format(name=visible(name), column=visible(column),
                                                     n=n, limit=limit))


def build_cohort(frame: pd.DataFrame, config: AuditConfig) -> Cohort:
    """Build every grouping of the audit from a validated frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        The joined, validated table.
    config : AuditConfig
        Attributes, intersections and reference groups.

    Returns
    -------
    Cohort

    Raises
    ------
    ConfigError
        If a configured reference group does not occur in the data, or an attribute has
        more than ``config.max_groups`` groups.
    """
    n = len(frame)
    overall = Grouping(OVERALL_ATTRIBUTE, np.zeros(n, dtype=np.int32), (OVERALL_GROUP,), None)
    singles: dict[str, Grouping] = {}
    for name, spec in config.attributes.items():
        column = frame[spec.column or name]
        codes, groups = _age(column, spec) if spec.kind == "age" else _categorical(column, spec)
        _check_group_count(name, spec.column or name, len(groups), config.max_groups)
        sizes = np.bincount(codes, minlength=len(groups))
        ref = _reference(name, groups, sizes, spec.reference)
        singles[name] = Grouping(name, codes, groups, ref, (name,))
    inter = [_combine([singles[a] for a in combo]) for combo in _combinations(config)]
    return Cohort(groupings=(overall, *singles.values(), *inter), n=n)
