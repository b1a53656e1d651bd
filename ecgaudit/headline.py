"""The headline rules shared by the CLI summary, the report and the Python API.

Pure functions of the published (already suppressed) result tables, so every surface that
shows a headline applies the same rule and any saved ``results.json`` can be re-read:

* :func:`worst_group`: the worst group of a task on a metric, over **every** published
  group (single attributes and intersections, ``ok`` and ``unstable``), flagged, never hidden.
* :func:`worse_than_chance`: every group whose AUROC is below 0.5 (always named).
* :func:`select_findings`: disparities that survive the run's Holm correction, harms first,
  main effects before intersections; BH-only results separately as exploratory.
* :func:`task_verdict`: a plain-language verdict per task from the findings, the policy
  outcome (if any) and the power figures (``extras["power"]``).

The rules are documented in ``docs/small-groups.md`` (section Headline and findings).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from ecgaudit.registry import directional, get_metric
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE

__all__ = [
    "ALPHA",
    "CALIBRATION_FINDING_METRICS",
    "FINDING_METRICS",
    "IMPORTANT_AUROC_GAP",
    "Finding",
    "WorstGroup",
    "select_findings",
    "task_verdict",
    "worse_than_chance",
    "worst_group",
]

#: Family-wise level at which a Holm-adjusted disparity is a finding.
ALPHA: Final = 0.05
#: Discrimination / threshold metrics phrased as findings (FNR and FPR are the same tests as
#: sensitivity and specificity, so they are not counted twice).
FINDING_METRICS: Final = ("auroc", "sensitivity", "specificity", "ppv", "npv")
#: Calibration metrics phrased as findings; the ideal value of each (None: lower is better).
CALIBRATION_FINDING_METRICS: Final[dict[str, float | None]] = {
    m: get_metric(m).target for m in ("oe_ratio", "cal_slope", "cal_intercept", "ece", "brier")}
#: AUROC gap treated as important when no policy gives one (verdict wording).
IMPORTANT_AUROC_GAP: Final = 0.05
_LOWER_IS_BETTER: Final = directional("lower", ("binary",))
_SHOWN: Final = ("ok", "unstable")


def _num(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _is_intersection(attribute: Any) -> bool:
    return INTERSECTION_SEP in str(attribute)


@dataclass(frozen=True)
class WorstGroup:
    """The worst published group of a task on one metric.

    Attributes
    ----------
    task, metric, attribute, group : str
        Where it is.
    estimate, ci_low, ci_high : float or None
        Its value and interval.
    status, reason : str
        ``ok`` or ``unstable`` and why.
    unstable : bool
        Whether the estimate is flagged unstable (shown, never hidden).
    worse_than_chance : bool
        AUROC below 0.5.
    n_groups, n_unstable : int
        How many published groups were considered, and how many of them are unstable.
    """

    task: str
    metric: str
    attribute: str
    group: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    status: str
    reason: str
    unstable: bool
    worse_than_chance: bool
    n_groups: int
    n_unstable: int

    def to_dict(self) -> dict[str, Any]:
        """Return plain data."""
        return asdict(self)


def _candidates(metrics: Sequence[Mapping[str, Any]], task: str, metric: str
                ) -> list[Mapping[str, Any]]:
    return [r for r in metrics if str(r["task"]) == task and r["metric"] == metric
            and r["attribute"] != OVERALL_ATTRIBUTE and str(r.get("status") or "ok") in _SHOWN
            and _num(r.get("estimate")) is not None]


def worst_group(metrics: Sequence[Mapping[str, Any]], task: str, metric: str = "auroc"
                ) -> WorstGroup | None:
    """Return the worst published group of ``task`` on ``metric``.

    Every group with a number is considered: single attributes and intersections, ``ok``
    and ``unstable`` alike (an unstable worst group is flagged, not skipped). Ties go to a
    single attribute before an intersection, then to table order.

    Parameters
    ----------
    metrics : sequence of mapping
        Records of the metric table.
    task : str
        The task.
    metric : str
        The metric (lower is worse, except for Brier, ECE, FNR and FPR).

    Returns
    -------
    WorstGroup or None
        None when no group has a number.
    """
    rows = _candidates(metrics, task, metric)
    if not rows:
        return None
    sign = -1.0 if metric in _LOWER_IS_BETTER else 1.0
    order = {id(r): i for i, r in enumerate(rows)}
    worst = min(rows, key=lambda r: (sign * float(r["estimate"]),
                                     _is_intersection(r["attribute"]), order[id(r)]))
    est = float(worst["estimate"])
    return WorstGroup(
        task=task, metric=metric, attribute=str(worst["attribute"]), group=str(worst["group"]),
        estimate=est, ci_low=_num(worst.get("ci_low")), ci_high=_num(worst.get("ci_high")),
        status=str(worst.get("status") or "ok"), reason=str(worst.get("reason") or ""),
        unstable=str(worst.get("status")) == "unstable",
        worse_than_chance=metric == "auroc" and est < 0.5,
        n_groups=len(rows), n_unstable=sum(str(r.get("status")) == "unstable" for r in rows))


def worse_than_chance(metrics: Sequence[Mapping[str, Any]], task: str
                      ) -> list[Mapping[str, Any]]:
    """Return every published group of ``task`` whose AUROC is below 0.5, worst first."""
    rows = [r for r in _candidates(metrics, task, "auroc") if float(r["estimate"]) < 0.5]
    return sorted(rows, key=lambda r: (float(r["estimate"]), _is_intersection(r["attribute"])))


@dataclass(frozen=True)
class Finding:
    """One disparity chosen for the headline.

    Attributes
    ----------
    record : mapping
        The ``disparities`` row.
    kind : {"harm", "better", "calibration"}
        Worse than the reference, better than the reference, or calibration worse than
        the reference's.
    confirmed : bool
        Survives the run's Holm correction (else BH only: exploratory).
    main_effect : bool
        A single attribute (not an intersection).
    """

    record: Mapping[str, Any]
    kind: str
    confirmed: bool
    main_effect: bool


def _calibration_harm(d: Mapping[str, Any], ref: float | None, ideal: float | None) -> bool:
    diff = float(d["difference"])
    if ideal is None:
        return diff > 0
    if ref is None:
        return False
    return abs(ref + diff - ideal) > abs(ref - ideal)


def _kind(d: Mapping[str, Any], ref_value: float | None) -> str:
    metric = str(d["metric"])
    if metric in CALIBRATION_FINDING_METRICS:
        harm = _calibration_harm(d, ref_value, CALIBRATION_FINDING_METRICS[metric])
        return "calibration" if harm else "better"
    worse = float(d["difference"]) > 0 if metric in _LOWER_IS_BETTER else (
        float(d["difference"]) < 0)
    return "harm" if worse else "better"


def select_findings(disparities: Sequence[Mapping[str, Any]],
                    metrics: Sequence[Mapping[str, Any]] = (), alpha: float = ALPHA
                    ) -> tuple[list[Finding], list[Finding]]:
    """Choose the findings: Holm-confirmed first, BH-only ones apart as exploratory.

    Order within each list: harms (and worse calibration) before "better than reference",
    main effects before intersections, then smaller Holm (BH) p, then larger difference.

    Parameters
    ----------
    disparities : sequence of mapping
        Records of the disparity table (``p_holm`` and ``p_bh`` over the run's family).
    metrics : sequence of mapping
        Records of the metric table (the reference's calibration value, to say whether a
        group's calibration is worse).
    alpha : float
        The family-wise (Holm) and false-discovery (BH) level.

    Returns
    -------
    (confirmed, exploratory) : tuple of lists of Finding
    """
    value = {(str(r["task"]), str(r["attribute"]), str(r["group"]), str(r["metric"])):
             _num(r.get("estimate")) for r in metrics}
    wanted = set(FINDING_METRICS) | set(CALIBRATION_FINDING_METRICS)
    confirmed: list[Finding] = []
    exploratory: list[Finding] = []
    for d in disparities:
        if (d.get("metric") not in wanted or str(d.get("status") or "ok") not in _SHOWN
                or _num(d.get("difference")) is None):
            continue
        holm, bh = _num(d.get("p_holm")), _num(d.get("p_bh"))
        ref = value.get((str(d["task"]), str(d["attribute"]), str(d["reference"]),
                         str(d["metric"])))
        f = Finding(record=d, kind=_kind(d, ref), confirmed=holm is not None and holm < alpha,
                    main_effect=not _is_intersection(d["attribute"]))
        if f.confirmed:
            confirmed.append(f)
        elif bh is not None and bh < alpha:
            exploratory.append(f)

    def rank(f: Finding) -> tuple:
        p = _num(f.record.get("p_holm" if f.confirmed else "p_bh"))
        return (f.kind == "better", not f.main_effect, p if p is not None else 1.0,
                -abs(float(f.record["difference"])), str(f.record["task"]),
                str(f.record["attribute"]), str(f.record["group"]), str(f.record["metric"]))

    return sorted(confirmed, key=rank), sorted(exploratory, key=rank)


def _name(attribute: Any, group: Any) -> str:
    return f"{attribute}={group}"


def task_verdict(task: str, metrics: Sequence[Mapping[str, Any]],
                 disparities: Sequence[Mapping[str, Any]],
                 power: Sequence[Mapping[str, Any]] = (),
                 gate: Mapping[str, Any] | None = None, *,
                 important_gap: float = IMPORTANT_AUROC_GAP, alpha: float = ALPHA,
                 max_names: int = 4) -> dict[str, Any]:
    """Give a plain-language verdict for one task.

    * "gap shown in X": a harm that survives Holm, or a failed policy rule, in group X;
    * "not enough data to judge Y (this audit can detect AUROC gaps larger than Z)": a
      single-attribute group that is withheld, has no AUROC, or whose minimum detectable
      AUROC difference Z (power figures) exceeds the important gap;
    * "no important gap shown" otherwise (for the groups with enough data).

    Parameters
    ----------
    task : str
        The task.
    metrics, disparities : sequence of mapping
        Records of the result tables.
    power : sequence of mapping
        ``extras["power"]`` rows (``min_detectable_auroc_difference`` per group).
    gate : mapping, optional
        ``GateResult.to_dict()``; failed rules on this task count as gaps shown.
    important_gap : float
        The AUROC difference the verdict calls important.
    alpha : float
        Holm level.
    max_names : int
        Groups named per clause before "and N more".

    Returns
    -------
    dict
        ``task``, ``verdict`` ("gap shown" / "not enough data" / "no important gap shown"),
        ``text`` and the lists ``gaps``, ``not_judged`` (name, detectable gap or None).
    """
    confirmed, _ = select_findings([d for d in disparities if str(d["task"]) == task],
                                   [r for r in metrics if str(r["task"]) == task], alpha)
    gaps = list(dict.fromkeys(
        _name(f.record["attribute"], f.record["group"]) for f in confirmed
        if f.kind in ("harm", "calibration")))
    for r in (gate or {}).get("rules") or []:
        if r.get("outcome") == "fail" and str(r.get("task")) == task and r.get("attribute"):
            gaps.append(_name(r["attribute"], r.get("group")))
    gaps = list(dict.fromkeys(gaps))
    mdd = {(str(p["attribute"]), str(p["group"])): _num(p.get("min_detectable_auroc_difference"))
           for p in power if str(p["task"]) == task}
    refs = {(str(d["attribute"]), str(d["reference"])) for d in disparities
            if str(d["task"]) == task}
    auroc = {(str(r["attribute"]), str(r["group"])): r for r in metrics
             if str(r["task"]) == task and r["metric"] == "auroc"
             and r["attribute"] != OVERALL_ATTRIBUTE and not _is_intersection(r["attribute"])}
    not_judged: list[tuple[str, float | None]] = []
    for key, r in auroc.items():
        name = _name(*key)
        if key in refs or name in gaps:
            continue
        z = mdd.get(key)
        if str(r.get("status")) not in _SHOWN or z is None or z > important_gap:
            not_judged.append((name, z))
    parts = []
    if gaps:
        parts.append("gap shown in " + _names(gaps, max_names))
    if not_judged:
        parts.append("not enough data to judge " + _not_judged_text(not_judged, max_names))
    if not gaps:
        lead = "no important gap shown" + (" in the other groups" if not_judged else "")
        parts.insert(0, lead)
    verdict = "gap shown" if gaps else ("not enough data" if not_judged
                                        else "no important gap shown")
    return {"task": task, "verdict": verdict, "text": "; ".join(parts) + ".",
            "gaps": gaps, "not_judged": [{"group": n, "detectable_gap": z}
                                         for n, z in not_judged],
            "important_gap": important_gap}


def _not_judged_text(items: list[tuple[str, float | None]], limit: int) -> str:
    """``"age=80+, site=3 (this audit can detect AUROC gaps larger than 0.09-0.12 there)"``."""
    powered = sorted((x for x in items if x[1] is not None), key=lambda x: (-x[1], x[0]))
    blind = [n for n, z in items if z is None]
    out = []
    if powered:
        lo, hi = min(z for _, z in powered), max(z for _, z in powered)
        span = f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"
        out.append(f"{_names([n for n, _ in powered], limit)} (this audit can detect AUROC "
                   f"gaps larger than {span} there)")
    if blind:
        out.append(f"{_names(blind, limit)} (too few patients or events to estimate)")
    return "; ".join(out)


def _names(items: list[str], limit: int) -> str:
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" and {len(items) - limit} more"
