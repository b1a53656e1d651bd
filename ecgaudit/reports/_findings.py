"""Plain-language findings and limitations generated from the audit's numbers.

Every sentence is built from the result tables (never from rows) and quotes numbers at the
report's display precision, so a reader can find each one again in the tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ecgaudit.reports._format import (
    fmt_ci,
    fmt_num,
    fmt_p,
    fmt_pct,
    group_phrase,
    is_number,
    metric_label,
)
from ecgaudit.reports._tables import ci_excludes_zero
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE, UNKNOWN_GROUP

#: Metrics whose disparities are phrased as findings (most clinically legible first).
FINDING_METRICS: Final = ("sensitivity", "auroc", "specificity", "ppv", "npv")
MAX_FINDINGS: Final = 6
MIN_FINDINGS: Final = 3
_RACE_WORDS: Final = ("race", "ethnic")


def disparity_sentence(d: Mapping[str, Any], multi_task: bool) -> str:
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
    p = fmt_p(d.get("p_bh"))
    if p != "–":
        parts.append(f"BH-adjusted p {p}" if p.startswith("<") else f"BH-adjusted p = {p}")
    paren = f" ({'; '.join(parts)})" if parts else ""
    return (
        f"{metric_label(str(d['metric']))}{task} for {group_phrase(attr, str(d['group']))} "
        f"is {fmt_num(abs(diff))} {word} than for {group_phrase(attr, str(d['reference']))}"
        f"{paren}."
    )


def _calibration_finding(metrics: Sequence[Mapping[str, Any]], multi_task: bool) -> str | None:
    worst, dist = None, 0.0
    for r in metrics:
        if (r["metric"] != "oe_ratio" or r["attribute"] == OVERALL_ATTRIBUTE
                or r.get("status") not in ("ok",) or not is_number(r.get("estimate"))):
            continue
        lo, hi = r.get("ci_low"), r.get("ci_high")
        if not (is_number(lo) and is_number(hi)) or float(lo) <= 1.0 <= float(hi):
            continue
        d = abs(float(r["estimate"]) - 1.0)
        if d > dist:
            worst, dist = r, d
    if worst is None:
        return None
    est = float(worst["estimate"])
    direction = "under-estimates" if est > 1 else "over-estimates"
    task = f" for {worst['task']}" if multi_task else ""
    return (
        f"The model {direction} risk{task} in "
        f"{group_phrase(str(worst['attribute']), str(worst['group']))}: "
        f"observed/expected events {fmt_num(est)} (95% CI "
        f"{fmt_ci(worst['ci_low'], worst['ci_high'])}; 1 is calibrated)."
    )


def _status_counts(metrics: Sequence[Mapping[str, Any]]) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {"suppressed": set(), "insufficient": set(),
                                            "unstable": set()}
    for r in metrics:
        st = str(r.get("status") or "ok")
        if st in out:
            out[st].add((str(r["attribute"]), str(r["group"])))
    return out


def findings(metrics: Sequence[Mapping[str, Any]], disparities: Sequence[Mapping[str, Any]],
             tasks: Sequence[str], gate: Mapping[str, Any] | None, min_cell: int) -> list[str]:
    """Generate 3-6 plain-language findings from the result tables.

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

    Returns
    -------
    list of str
    """
    multi = len(tasks) > 1
    out: list[str] = []
    if gate:
        s = gate.get("summary") or {}
        counts = ", ".join(f"{s[k]} {k}" for k in ("pass", "fail", "inconclusive")
                           if is_number(s.get(k)))
        failed = list(dict.fromkeys(str(r.get("rule_id")) for r in gate.get("rules") or []
                                    if r.get("outcome") == "fail"))
        out.append(f"Fairness policy result: {str(gate.get('status', 'unknown')).upper()}"
                   + (f" ({counts} rule checks)" if counts else "")
                   + (f"; failed rules: {', '.join(failed)}." if failed else "."))
    clear = [d for d in disparities if d.get("metric") in FINDING_METRICS
             and d.get("status") in ("ok", None) and is_number(d.get("difference"))
             and ci_excludes_zero(d)]
    ranked = sorted(clear, key=lambda d: (-abs(float(d["difference"])), str(d["task"]),
                                          str(d["attribute"]), str(d["group"])))
    # One finding per metric, in order of clinical legibility, at most three; prefer a task
    # not yet mentioned so a multi-task audit is not summarised by one task alone.
    used: set[str] = set()
    for metric in FINDING_METRICS:
        cands = [d for d in ranked if d["metric"] == metric]
        if not cands or len(out) >= 3 + (1 if gate else 0):
            continue
        pick = next((d for d in cands if str(d["task"]) not in used), cands[0])
        used.add(str(pick["task"]))
        out.append(disparity_sentence(pick, multi))
    if not clear:
        out.append(
            "No group's sensitivity, AUROC, specificity, PPV or NPV differed from its reference "
            "group by more than chance would explain (every 95% CI includes 0); this is not proof "
            "of equal performance: check the width of the intervals."
        )
    cal = _calibration_finding(metrics, multi)
    if cal:
        out.append(cal)
    counts = _status_counts(metrics)
    small = len(counts["suppressed"])
    insuff = len(counts["insufficient"] - counts["suppressed"])
    if small or insuff:
        out.append(
            f"{small} group{'s' if small != 1 else ''} had fewer than {min_cell} patients and "
            f"{'were' if small != 1 else 'was'} suppressed; {insuff} had too few events for some "
            "metrics. No conclusion about these groups is possible from this audit."
        )
    if len(out) < MIN_FINDINGS:
        out.extend(_headline_findings(metrics, tasks, multi)[: MIN_FINDINGS - len(out)])
    return out[:MAX_FINDINGS]


def _headline_findings(metrics: Sequence[Mapping[str, Any]], tasks: Sequence[str],
                       multi: bool) -> list[str]:
    out = []
    for task in tasks:
        ok = [r for r in metrics if r["task"] == task and r["metric"] == "auroc"
              and r["attribute"] != OVERALL_ATTRIBUTE and r.get("status") == "ok"
              and is_number(r.get("estimate"))]
        if not ok:
            continue
        worst = min(ok, key=lambda r: (float(r["estimate"]), str(r["attribute"])))
        label = f" for {task}" if multi else ""
        out.append(
            f"The lowest AUROC{label} is in "
            f"{group_phrase(str(worst['attribute']), str(worst['group']))}: "
            f"{fmt_num(worst['estimate'])} (95% CI {fmt_ci(worst['ci_low'], worst['ci_high'])})."
        )
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
        out.append(f"Too small to report (fewer than {min_cell} patients, suppressed for privacy "
                   f"and precision): {shown}.")
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
