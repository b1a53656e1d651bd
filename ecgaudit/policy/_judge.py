"""Three-way judgement of an estimate (or its interval) against an accepted range."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["Judgement", "Outcome", "fmt", "judge_range"]

Outcome = Literal["pass", "fail", "inconclusive"]

#: Statuses whose row carries no number: the rule cannot be judged there.
UNJUDGEABLE_STATUSES = ("insufficient", "suppressed")


@dataclass(frozen=True)
class Judgement:
    """The outcome of judging one value (or interval) against ``[low, high]``."""

    outcome: Outcome
    value: float | None
    ci_low: float | None
    ci_high: float | None
    detail: str


def _num(x: object) -> float | None:
    if x is None:
        return None
    try:
        f = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def fmt(x: float | None, digits: int = 3) -> str:
    """Format a number for messages (``NaN`` for a missing value)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def describe_range(low: float, high: float) -> str:
    """Describe an accepted range in words, e.g. ``>= 0.80`` or ``in [0.8, 1.25]``."""
    if math.isinf(low) and math.isinf(high):
        return "any value"
    if math.isinf(high):
        return f">= {fmt(low)}"
    if math.isinf(low):
        return f"<= {fmt(high)}"
    return f"in [{fmt(low)}, {fmt(high)}]"


def judge_range(
    estimate: object,
    ci_low: object,
    ci_high: object,
    judge: str,
    low: float,
    high: float,
    label: str = "value",
) -> Judgement:
    """Judge an estimate or its confidence interval against the accepted range.

    Parameters
    ----------
    estimate, ci_low, ci_high : float or None
        The point estimate and its interval (NaN/None when missing).
    judge : {"point", "ci", "ci_low", "ci_high"}
        ``point``/``ci_low``/``ci_high`` compare that single number (pass or fail);
        ``ci`` passes when the whole interval is inside the range, fails when it is
        wholly outside, and is inconclusive when it straddles a bound.
    low, high : float
        The accepted range (inclusive; infinite for an open side).
    label : str
        What is judged, for the detail text.

    Returns
    -------
    Judgement
        A missing number is always ``inconclusive``: NaN never passes.
    """
    est, lo, hi = _num(estimate), _num(ci_low), _num(ci_high)
    want = describe_range(low, high)
    ci_text = f"CI [{fmt(lo)}, {fmt(hi)}]"
    if judge in ("point", "ci_low", "ci_high"):
        value = {"point": est, "ci_low": lo, "ci_high": hi}[judge]
        what = {"point": label, "ci_low": f"{label} CI lower bound",
                "ci_high": f"{label} CI upper bound"}[judge]
        if value is None:
            reason = "no estimate" if judge == "point" else "no confidence interval"
            return Judgement("inconclusive", est, lo, hi, f"{what} is missing ({reason})")
        ok = low <= value <= high
        verdict = "pass" if ok else "fail"
        text = f"{what} {fmt(value)} {'is' if ok else 'is not'} {want}"
        return Judgement(verdict, est, lo, hi, text)
    if judge != "ci":
        raise ValueError(f"unknown judge {judge!r}")
    if lo is None or hi is None:
        if est is None:
            return Judgement("inconclusive", None, lo, hi,
                             f"{label} has no estimate and no confidence interval")
        return Judgement(
            "inconclusive", est, lo, hi,
            f"{label} {fmt(est)} has no confidence interval; a 'ci' rule cannot be judged "
            "(use judge: point, or run the audit with intervals for this metric)",
        )
    if low <= lo and hi <= high:
        return Judgement(
            "pass", est, lo, hi, f"{label} {fmt(est)}: whole {ci_text} is {want}"
        )
    if hi < low or lo > high:
        return Judgement(
            "fail", est, lo, hi,
            f"{label} {fmt(est)}: whole {ci_text} is outside the accepted range ({want})",
        )
    return Judgement(
        "inconclusive", est, lo, hi,
        f"{label} {fmt(est)}: {ci_text} straddles a limit of the accepted range ({want})",
    )


def combine(outcomes: list[Outcome]) -> Outcome:
    """Combine outcomes: any fail -> fail; else any inconclusive -> inconclusive; else pass."""
    if "fail" in outcomes:
        return "fail"
    if "inconclusive" in outcomes or not outcomes:
        return "inconclusive"
    return "pass"


#: Suffix of a ``ci_method`` whose interval is a closed-form fallback after the bootstrap
#: replicates collapsed (contract with the interval code: ``"<method>-fallback"``).
FALLBACK_SUFFIX = "-fallback"


def weak_evidence(estimate: object, ci_low: object, ci_high: object, *, status: object,
                  reason: object, ci_method: object) -> list[str]:
    """Return why an estimate cannot carry a verdict on its own (empty when it can).

    Parameters
    ----------
    estimate, ci_low, ci_high : float or None
        The judged number and its interval.
    status, reason, ci_method : object
        The row's ``status``, ``reason`` and ``ci_method`` columns.

    Returns
    -------
    list of str
        One phrase per problem: an ``unstable`` estimate, a missing interval, an interval
        of zero width, or a boundary fallback interval.
    """
    why = isinstance(reason, str) and bool(reason.strip())
    out = []
    if str(status or "ok") == "unstable":
        out.append("the estimate is flagged unstable" + (f" ({reason})" if why else ""))
    lo, hi = _num(ci_low), _num(ci_high)
    if _num(estimate) is not None and (lo is None or hi is None):
        out.append("it has no confidence interval")
    elif lo is not None and hi is not None and not hi - lo > 1e-12 * max(1.0, abs(lo)):
        out.append(f"its confidence interval has zero width [{fmt(lo)}, {fmt(hi)}] and "
                   "carries no information")
    method = str(ci_method or "")
    if method.endswith(FALLBACK_SUFFIX):
        out.append(f"its interval is a boundary fallback ({method}"
                   + (f": {reason}" if why and "fallback" in str(reason) else "") + ")")
    return out


def gate_on_evidence(j: Judgement, problems: list[str], low: float, high: float,
                     label: str = "value") -> Judgement:
    """Make a verdict on weak evidence ``inconclusive`` unless the whole interval decides it.

    A pass or fail stands only when a (non-degenerate) confidence interval lies wholly inside
    (pass) or wholly outside (fail) the accepted range; otherwise the outcome is
    ``inconclusive`` and the detail names every problem.

    Parameters
    ----------
    j : Judgement
        The judgement from :func:`judge_range`.
    problems : list of str
        From :func:`weak_evidence`.
    low, high : float
        The accepted range.
    label : str
        What is judged.

    Returns
    -------
    Judgement
    """
    if not problems:
        return j
    why = "; ".join(problems)
    degenerate = any("zero width" in p or "no confidence interval" in p for p in problems)
    if j.outcome != "inconclusive" and not degenerate:
        whole = judge_range(j.value, j.ci_low, j.ci_high, "ci", low, high, label)
        if whole.outcome == j.outcome:
            return Judgement(j.outcome, j.value, j.ci_low, j.ci_high,
                             f"{j.detail} ({why}; the whole CI decides it)")
    if j.outcome == "inconclusive":
        return Judgement("inconclusive", j.value, j.ci_low, j.ci_high, f"{j.detail} ({why})")
    return Judgement(
        "inconclusive", j.value, j.ci_low, j.ci_high,
        f"inconclusive because {why}: only an interval lying wholly inside or wholly outside "
        f"the accepted range ({describe_range(low, high)}) could decide; {j.detail}",
    )
