"""Which cells to withhold: primary small cells plus complementary suppression.

The exports publish, per task and group, the group size ``n`` (and its patients), the
positives ``n_pos`` and seven threshold rates that together give the confusion table
(TP, FN, FP, TN = rate x published denominator). Every group of an attribute adds up to the
overall cohort, and the cells of an intersection add up to its margins. So a withheld count
could be recovered by subtraction whenever it is the only withheld one in such a sum.

Three things can be withheld for a group (each implies less than the one before):

* ``groups``: the whole group (every number in every row), when it has 1..k-1 patients;
* ``positives`` (per task): ``n_pos``, when it or ``n - n_pos`` is 1..k-1 ECGs; with ``n``
  known the rates would give ``n_pos`` back, so this also withholds the rates;
* ``rates`` (per task): the seven threshold rates, when TP, FN, FP or TN is 1..k-1 ECGs.

Complementary suppression then walks every additive constraint (``overall = sum of an
attribute's groups``; ``margin = sum of its intersection cells``) and, while exactly one
member of a constraint is withheld at some level, withholds the same level in the smallest
other member (never the overall row), until no constraint has exactly one. This is the
classical cell-suppression heuristic (Cox 1980; Hundepool et al., *Statistical Disclosure
Control*, 2012, ch. 4): no withheld count equals a published total minus published counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from ecgaudit.privacy._cells import is_small_cell
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE

__all__ = ["Cell", "SuppressionPlan", "plan_suppression"]

Cell = tuple[str, str]


@dataclass
class SuppressionPlan:
    """The cells an audit withholds, and why.

    Attributes
    ----------
    k : int
        ``min_cell_size``.
    groups : dict
        ``(attribute, group) -> "primary" | "complementary"``: whole group withheld.
    positives : dict
        ``(task, attribute, group) -> "primary" | "complementary"``: ``n_pos`` withheld.
    rates : dict
        ``(task, attribute, group) -> "primary" | "complementary"``: threshold rates withheld.
    """

    k: int
    groups: dict[Cell, str] = field(default_factory=dict)
    positives: dict[tuple[str, str, str], str] = field(default_factory=dict)
    rates: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def group_hidden(self, attribute: str, group: str) -> bool:
        """Return whether every number of the group is withheld."""
        return (attribute, group) in self.groups

    def positives_hidden(self, task: str, attribute: str, group: str) -> bool:
        """Return whether the group's ``n_pos`` for ``task`` is withheld."""
        return self.group_hidden(attribute, group) or (task, attribute, group) in self.positives

    def rates_hidden(self, task: str, attribute: str, group: str) -> bool:
        """Return whether the group's threshold rates for ``task`` are withheld."""
        return (self.positives_hidden(task, attribute, group)
                or (task, attribute, group) in self.rates)

    def counts(self) -> dict[str, int]:
        """Return how many cells are withheld, by level and reason (for manifests/reports)."""
        out: dict[str, int] = {}
        for name, table in (("groups", self.groups), ("positives", self.positives),
                            ("rates", self.rates)):
            for why in ("primary", "complementary"):
                out[f"{name}_{why}"] = sum(v == why for v in table.values())
        return out


def _constraints(cells: Sequence[Cell]) -> list[list[Cell]]:
    """Additive constraints: the first member is the total, the rest add up to it."""
    present = set(cells)
    by_attr: dict[str, list[str]] = {}
    for a, g in cells:
        by_attr.setdefault(a, []).append(g)
    out: list[list[Cell]] = []
    overall = next(((a, g) for a, g in cells if a == OVERALL_ATTRIBUTE), None)
    for attr, groups in by_attr.items():
        if attr == OVERALL_ATTRIBUTE:
            continue
        if overall is not None:
            out.append([overall] + [(attr, g) for g in groups])
        comps = attr.split(INTERSECTION_SEP)
        if len(comps) < 2:
            continue
        for j in range(len(comps)):
            rest = comps[:j] + comps[j + 1:]
            margin_attr = INTERSECTION_SEP.join(rest)
            parts: dict[str, list[Cell]] = {}
            for g in groups:
                vals = g.split(INTERSECTION_SEP)
                if len(vals) != len(comps):
                    continue
                key = INTERSECTION_SEP.join(vals[:j] + vals[j + 1:])
                parts.setdefault(key, []).append((attr, g))
            for key, members in parts.items():
                if (margin_attr, key) in present:
                    out.append([(margin_attr, key), *members])
    return out


def _confusion(metrics: pd.DataFrame) -> dict[tuple[str, str, str], tuple[float, ...]]:
    """``(task, attr, group) -> (n, n_pos, TP, FN, FP, TN)`` from the unsuppressed table."""
    wanted = metrics[metrics["metric"].isin(["sensitivity", "specificity"])]
    out: dict[tuple[str, str, str], list[float]] = {}
    columns = ("task", "attribute", "group", "metric", "n", "n_pos", "estimate")
    for task, attr, group, metric, n_raw, pos_raw, est_raw in zip(
            *(wanted[c].tolist() for c in columns)):  # lists: fast to iterate
        key = (str(task), str(attr), str(group))
        n = float(n_raw) if pd.notna(n_raw) else math.nan
        n_pos = float(pos_raw) if pd.notna(pos_raw) else math.nan
        cur = out.setdefault(key, [n, n_pos, math.nan, math.nan, math.nan, math.nan])
        est = float(est_raw) if pd.notna(est_raw) else math.nan
        denom = n_pos if metric == "sensitivity" else n - n_pos
        if denom == 0:
            hit = 0.0
        elif math.isnan(est) or math.isnan(denom):
            hit = math.nan
        else:
            hit = float(round(est * denom))
        slot = 2 if metric == "sensitivity" else 5
        cur[slot] = hit
        cur[slot + 1 if slot == 2 else 4] = denom - hit if not math.isnan(hit) else math.nan
    return {k: tuple(v) for k, v in out.items()}


def _primary(plan: SuppressionPlan, metrics: pd.DataFrame, units: Mapping[Cell, int],
             tasks: Iterable[str], rate_cells: bool = True) -> None:
    k = plan.k
    for cell, u in units.items():
        if bool(is_small_cell(u, k)):
            plan.groups[cell] = "primary"
    conf = _confusion(metrics)
    for (task, attr, group), (n, n_pos, *table) in conf.items():
        if (attr, group) in plan.groups:
            continue
        key = (task, attr, group)
        if is_small_cell([n_pos, n - n_pos], k).any():
            plan.positives[key] = "primary"
        # A count that cannot be rebuilt (NaN) is treated as small: withhold rather than leak.
        if rate_cells and (any(math.isnan(c) for c in table) or is_small_cell(table, k).any()):
            plan.rates[key] = "primary"
    del tasks


def _complement(members: list[Cell], hidden: set[Cell], size: Mapping[Cell, float]
                ) -> Cell | None:
    """Return the smallest member not yet hidden, never the overall row."""
    free = [c for c in members if c not in hidden and c[0] != OVERALL_ATTRIBUTE]
    if not free:
        return None
    return min(free, key=lambda c: (size.get(c, math.inf), c))


def plan_suppression(metrics: pd.DataFrame, units: Mapping[Cell, int], k: int,
                     *, rate_cells: bool = True) -> SuppressionPlan:
    """Decide which cells to withhold (primary small cells and their complements).

    Parameters
    ----------
    metrics : pandas.DataFrame
        The unsuppressed metric table (``n``, ``n_pos`` and the sensitivity / specificity
        estimates give every group's confusion table).
    units : mapping
        Patients (ECGs without a patient column) per ``(attribute, group)``.
    k : int
        ``min_cell_size``.
    rate_cells : bool, default True
        Also withhold the threshold rates whose confusion cells (TP, FN, FP, TN, rebuilt
        from rate x denominator) are small. Survival audits pass ``False``: their rates at a
        horizon are IPCW-weighted proportions of the cases and controls by that horizon, not
        of ``n_pos`` and ``n - n_pos``, so no integer cell can be rebuilt from them.

    Returns
    -------
    SuppressionPlan
        Deterministic for the same tables (ties are broken by attribute and group name).
    """
    plan = SuppressionPlan(k=int(k))
    # Columns as lists first: iterating a text column element by element is slow.
    tasks = list(dict.fromkeys(str(t) for t in metrics["task"].tolist()))
    cells = list(dict.fromkeys((str(a), str(g)) for a, g in zip(
        metrics["attribute"].tolist(), metrics["group"].tolist())))
    first = metrics.drop_duplicates(["attribute", "group"])
    size = {(str(a), str(g)): float(n) if pd.notna(n) else math.inf
            for a, g, n in zip(first["attribute"].tolist(), first["group"].tolist(),
                               first["n"].tolist())}
    _primary(plan, metrics, units, tasks, rate_cells)
    constraints = _constraints(cells)
    changed = True
    while changed:
        changed = False
        for members in constraints:
            hidden = {c for c in members if c in plan.groups}
            if len(hidden) == 1 and (pick := _complement(members, hidden, size)):
                plan.groups[pick] = "complementary"
                changed = True
            for task in tasks:
                for level in ("positives", "rates"):
                    test = plan.positives_hidden if level == "positives" else plan.rates_hidden
                    hidden_t = {c for c in members if test(task, *c)}
                    if len(hidden_t) == 1 and (pick := _complement(members, hidden_t, size)):
                        getattr(plan, level)[(task, *pick)] = "complementary"
                        changed = True
    return plan
