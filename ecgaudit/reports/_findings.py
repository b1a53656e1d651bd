"""Plain-language findings and limitations generated from the audit's numbers.

Every sentence is built from the result tables (never from rows) and quotes numbers at the
report's display precision, so a reader can find each one again in the tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ecgaudit.headline import Finding, select_findings, worse_than_chance, worst_group
from ecgaudit.reports._format import (
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_pct,
    group_phrase,
    is_number,
    metric_label,
)
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE, UNKNOWN_GROUP

#: Findings quoted before "N more differences..." (worse-than-chance AUROCs always shown).
MAX_FINDINGS: Final = 6
MIN_FINDINGS: Final = 3
_RACE_WORDS: Final = ("race", "ethnic")


def disparity_sentence(d: Mapping[str, Any], multi_task: bool, kind: str = "",
                       confirmed: bool = True) -> str:
    """Phrase one disparity: "Sensitivity for X is 0.120 lower than for Y (95% CI ...)".

    Parameters
    ----------
    d : mapping
        A ``disparities`` record with a numeric difference.
    multi_task : bool
        Whether to name the task.

    Returns
    -------
    str
    """
    diff = float(d["difference"])
    lo, hi = d.get("difference_ci_low"), d.get("difference_ci_high")
    word = "lower" if diff < 0 else "higher"
    if diff < 0 and is_number(lo) and is_number(hi):
        lo, hi = -float(hi), -float(lo)
    attr = str(d["attribute"])
    task = f" ({d['task']})" if multi_task else ""
    parts = []
    ci = fmt_ci(lo, hi)
    if ci:
        parts.append(f"95% CI {ci}")
    which, name = ("p_holm", "Holm-adjusted p") if confirmed else ("p_bh", "BH-adjusted p")
    p = fmt_p(d.get(which))
    if p != "–":
        parts.append(f"{name} {p}" if p.startswith("<") else f"{name} = {p}")
    if str(d.get("status")) == "unstable":
        parts.append("unstable: few events")
    paren = f" ({'; '.join(parts)})" if parts else ""
    label = {"better": ": better than the reference",
             "calibration": ": worse calibration than the reference"}.get(kind, "")
    return (
        f"{metric_label(str(d['metric']))}{task} for {group_phrase(attr, str(d['group']))} "
        f"is {fmt_num(abs(diff))} {word} than for {group_phrase(attr, str(d['reference']))}"
        f"{paren}{label}."
    )


def _status_counts(metrics: Sequence[Mapping[str, Any]]) -> dict[str, set[tuple[str, str]]]:
    """Return groups by status (suppressed: every row withheld; others: any row so flagged)."""
    out: dict[str, set[tuple[str, str]]] = {"suppressed": set(), "insufficient": set(),
                                            "unstable": set()}
    whole: dict[tuple[str, str], bool] = {}
    for r in metrics:
        key = (str(r["attribute"]), str(r["group"]))
        st = str(r.get("status") or "ok")
        whole[key] = whole.get(key, True) and st == "suppressed"
        if st in ("insufficient", "unstable"):
            out[st].add(key)
    out["suppressed"] = {k for k, v in whole.items() if v}
    return out


def _gate_sentence(gate: Mapping[str, Any]) -> str:
    s = gate.get("summary") or {}
    counts = ", ".join(f"{s[k]} {k}" for k in ("pass", "fail", "inconclusive")
                       if is_number(s.get(k)))
    failed = list(dict.fromkeys(str(r.get("rule_id")) for r in gate.get("rules") or []
                                if r.get("outcome") == "fail"))
    return (f"Fairness policy result: {str(gate.get('status', 'unknown')).upper()}"
            + (f" ({counts} rule checks)" if counts else "")
            + (f"; failed rules: {', '.join(failed)}." if failed else "."))


def _chance_sentence(r: Mapping[str, Any], multi: bool) -> str:
    task = f" for {r['task']}" if multi else ""
    flag = "; unstable: few events" if r.get("status") == "unstable" else ""
    ci = fmt_ci(r.get("ci_low"), r.get("ci_high"))
    return (f"AUROC{task} in {group_phrase(str(r['attribute']), str(r['group']))} is "
            f"{fmt_num(r['estimate'])}, worse than chance (0.5)"
            f"{f' (95% CI {ci}{flag})' if ci else (f' ({flag[2:]})' if flag else '')}: "
            "the model ranks this group's cases below its non-cases.")


def count_sentence(metrics: Sequence[Mapping[str, Any]], min_cell: int,
                   min_events: Any) -> str | None:
    """State how many groups were withheld and how many had too few events.

    A group "had too few events" when any of its rows is ``unstable`` (fewer than
    ``min_events`` positives or negatives) or ``insufficient`` (none), for any task.
    """
    counts = _status_counts(metrics)
    withheld = counts["suppressed"]
    small = {(str(r["attribute"]), str(r["group"])) for r in metrics
             if str(r.get("reason") or "").startswith(f"fewer than {min_cell} patients")}
    few = (counts["unstable"] | counts["insufficient"]) - withheld
    undefined = counts["insufficient"] - withheld
    if not (withheld or few):
        return None
    parts = []
    if withheld:
        n_small = len(withheld & small)
        parts.append(
            f"{len(withheld)} group{'s were' if len(withheld) != 1 else ' was'} withheld for "
            f"privacy ({n_small} with fewer than {min_cell} patients"
            + (f", {len(withheld) - n_small} more so that their counts cannot be derived by "
               "subtraction" if len(withheld) > n_small else "") + ")")
    if few:
        parts.append(
            f"{len(few)} group{'s' if len(few) != 1 else ''} had too few events (fewer than "
            f"{min_events} positive or negative ECGs) for at least one task"
            + (f", {len(undefined)} of them so few that some metrics could not be estimated"
               if undefined else ""))
    return "; ".join(parts) + ". No conclusion about these groups is possible from this audit."


def findings(metrics: Sequence[Mapping[str, Any]], disparities: Sequence[Mapping[str, Any]],
             tasks: Sequence[str], gate: Mapping[str, Any] | None, min_cell: int,
             min_events: Any = 10) -> list[str]:
    """Generate the plain-language findings from the result tables.

    The rule is :func:`ecgaudit.headline.select_findings` (Holm-confirmed disparities,
    harms first, main effects before intersections) plus every worse-than-chance AUROC
    (:func:`ecgaudit.headline.worse_than_chance`), which is never left out.

    Parameters
    ----------
    metrics, disparities : sequence of mapping
        Records of the result tables.
    tasks : sequence of str
        Task names.
    gate : mapping, optional
        Gate result (``GateResult.to_dict()``).
    min_cell : int
        Small-cell threshold.
    min_events : int
        Events below which an estimate is unstable.

    Returns
    -------
    list of str
    """
    multi = len(tasks) > 1
    out: list[str] = [_gate_sentence(gate)] if gate else []
    for t in tasks:
        out += [_chance_sentence(r, multi) for r in worse_than_chance(metrics, t)]
    confirmed, _ = select_findings(disparities, metrics)
    room = max(1, MAX_FINDINGS - len(out) - 2)  # leave room for the "more" and count lines
    picked = _pick(confirmed, room)
    out += [disparity_sentence(f.record, multi, f.kind) for f in picked]
    if not confirmed:
        out.append(
            "No difference between a group and its reference group survived the Holm "
            "correction over this run's tests; this is not proof of equal performance: see "
            "the verdict per task and the width of the intervals.")
    elif len(confirmed) > len(picked):
        out.append(f"{len(confirmed) - len(picked)} more differences survived the Holm "
                   "correction; every one is listed in the disparity section of each task.")
    counts = count_sentence(metrics, min_cell, min_events)
    if counts:
        out.append(counts)
    if len(out) < MIN_FINDINGS:
        out.extend(_headline_findings(metrics, tasks, multi)[: MIN_FINDINGS - len(out)])
    return out


def _pick(confirmed: list[Finding], room: int) -> list[Finding]:
    """Harms before "better than reference"; within each, one per task before a second."""
    picked: list[Finding] = []
    for better in (False, True):
        tier = [f for f in confirmed if (f.kind == "better") == better]
        for f in tier:
            if len(picked) < room and str(f.record["task"]) not in {
                    str(p.record["task"]) for p in picked if (p.kind == "better") == better}:
                picked.append(f)
        picked += [f for f in tier if f not in picked][: room - len(picked)]
    return sorted(picked, key=confirmed.index)


def exploratory_findings(metrics: Sequence[Mapping[str, Any]],
                         disparities: Sequence[Mapping[str, Any]], tasks: Sequence[str],
                         limit: int = 10) -> list[str]:
    """Phrase differences significant after Benjamini-Hochberg but not after Holm."""
    _, exploratory = select_findings(disparities, metrics)
    multi = len(tasks) > 1
    out = [disparity_sentence(f.record, multi, f.kind, confirmed=False)
           for f in exploratory[:limit]]
    if len(exploratory) > limit:
        out.append(f"... and {len(exploratory) - limit} more (see disparities.csv, p_bh).")
    return out


def _headline_findings(metrics: Sequence[Mapping[str, Any]], tasks: Sequence[str],
                       multi: bool) -> list[str]:
    out = []
    for task in tasks:
        worst = worst_group(metrics, task)
        if worst is None:
            continue
        label = f" for {task}" if multi else ""
        flag = "; unstable: few events" if worst.unstable else ""
        out.append(
            f"The lowest AUROC{label} is in {group_phrase(worst.attribute, worst.group)}: "
            f"{fmt_num(worst.estimate)} (95% CI {fmt_ci(worst.ci_low, worst.ci_high)}{flag}).")
    return out


def limitations(metrics: Sequence[Mapping[str, Any]], disparities: Sequence[Mapping[str, Any]],
                cohort: Sequence[Mapping[str, Any]], config: Mapping[str, Any],
                thresholds: Mapping[str, Any], total_n: Any, min_cell: int) -> list[str]:
    """List the limitations of this audit that follow from its data and settings.

    Returns
    -------
    list of str
    """
    out: list[str] = []
    counts = _status_counts(metrics)
    if counts["suppressed"]:
        names = sorted(f"{a} {g}" for a, g in counts["suppressed"])
        shown = "; ".join(names[:12]) + (f"; and {len(names) - 12} more" if len(names) > 12 else "")
        out.append(f"Withheld for privacy (fewer than {min_cell} patients, or withheld as well "
                   f"so that a small group's counts cannot be derived by subtraction): {shown}.")
    insuff = sorted(counts["insufficient"] - counts["suppressed"])
    if insuff:
        reasons = sorted({str(r.get("reason") or "not estimable") for r in metrics
                          if r.get("status") == "insufficient"})
        out.append(f"{len(insuff)} group{'s' if len(insuff) != 1 else ''} could not be assessed on "
                   f"some metrics ({'; '.join(reasons[:4])}).")
    if counts["unstable"]:
        out.append(f"{len(counts['unstable'])} groups have few events; their estimates are shown "
                   "with hollow markers and wide intervals and should not be over-interpreted.")
    for c in cohort:
        if str(c.get("group")) == UNKNOWN_GROUP and is_number(c.get("n")):
            out.append(f"{c['attribute']}: {fmt_pct(c['n'], total_n)} of ECGs have no recorded "
                       "value (shown as group Unknown); results for the recorded groups may be "
                       "biased if values are not missing at random.")
    attrs = [str(a) for a in (config.get("attributes") or {})]
    attrs = attrs or sorted({str(r["attribute"]) for r in metrics
                             if r["attribute"] != OVERALL_ATTRIBUTE
                             and INTERSECTION_SEP not in str(r["attribute"])})
    if not any(w in a.lower() for a in attrs for w in _RACE_WORDS):
        out.append("Race and ethnicity were not audited (not available in the data); "
                   "disparities along them cannot be excluded.")
    n_tests = sum(1 for d in disparities if is_number(d.get("p_value")))
    if n_tests:
        out.append(f"{n_tests} comparisons with a reference group were made; p-values are "
                   "adjusted (Holm, Benjamini-Hochberg) but the 95% intervals are not, so some "
                   "intervals will exclude no difference by chance.")
    derived = [t for t, th in thresholds.items() if isinstance(th, Mapping)
               and th.get("rule") not in (None, "fixed")]
    if derived:
        out.append(f"The operating threshold of {', '.join(derived)} was derived from audit data "
                   "by a rule; threshold-based metrics may be optimistic if derived on the same "
                   "patients.")
    if not config.get("patient_column"):
        out.append("No patient identifier column was configured: if patients contribute several "
                   "ECGs, the intervals are too narrow.")
    if not int(config.get("bootstrap") or 0):
        out.append("Intervals are asymptotic (DeLong for AUROC, Wilson for rates); no bootstrap "
                   "intervals were computed for the other metrics.")
    ctx = config.get("context") or {}
    if not ctx.get("target_population"):
        out.append("No target population was given, so representativeness of the cohort was not "
                   "assessed.")
    return out
