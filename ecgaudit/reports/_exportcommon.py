"""Shared pieces of the standards exports: field provenance, summaries of the result.

Every exported field is ``{"value": ..., "source": ...}`` with ``source`` one of
``audit`` (computed from the result tables), ``context`` (the config's free-text
``context``, given by the user) or ``user`` (not known to the audit: ``value`` is ``null``
and the field is left for the model developer or deployer to complete).
Exports only quote numbers the result already shows (small cells stay suppressed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ecgaudit.privacy import min_cell_size_of
from ecgaudit.reports._format import fmt_ci, fmt_num, group_phrase, is_number
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE, UNKNOWN_GROUP

__all__ = ["LEFT_FOR_USER", "audit_field", "context_field", "envelope", "key_metric_values",
           "metric_text", "testing_data_description", "user_field", "validation_description",
           "value_json"]

LEFT_FOR_USER = "To be completed by the model developer or deployer (not known to the audit)."


def audit_field(value: Any) -> dict[str, Any]:
    """Return a field filled from the audit result."""
    return {"value": value, "source": "audit"}


def context_field(ctx: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Return a field from the config's ``context`` (left for the user when not given)."""
    text = ctx.get(key)
    return {"value": str(text), "source": "context"} if text else user_field()


def user_field() -> dict[str, Any]:
    """Return a field the audit cannot fill."""
    return {"value": None, "source": "user"}


def envelope(standard: str, version: str, data: Mapping[str, Any],
             official_schema: str | None, note: str) -> dict[str, Any]:
    """Return the header shared by every export (what it follows and where it came from)."""
    manifest = data.get("manifest") or {}
    return {
        "standard": standard, "standard_version": version,
        "official_machine_schema": official_schema, "conformance_note": note,
        "generated_by": f"ecgaudit {manifest.get('ecgaudit_version', 'unknown')}",
        "audit": {"results_schema_version": str(data.get("schema_version", "")),
                  "seed": manifest.get("seed"),
                  "inputs": [{"role": str(i.get("role", "")), "name": str(i.get("name", "")),
                              "sha256": str(i.get("sha256", ""))}
                             for i in manifest.get("inputs") or []]},
    }


def _overall(records: Sequence[Mapping[str, Any]], task: str, metric: str) -> Mapping | None:
    return next((r for r in records if r["task"] == task and r["metric"] == metric
                 and r["attribute"] == OVERALL_ATTRIBUTE), None)


def _value(r: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if r is None or not is_number(r.get("estimate")):
        return None
    return {"estimate": r["estimate"], "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"),
            "ci_method": r.get("ci_method"), "status": r.get("status")}


def key_metric_values(data: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """Labelled metric results of one CHAI key-metric family (plain data, JSON-ready).

    ``kind``: ``usefulness`` (overall AUROC, sensitivity, specificity), ``fairness`` (worst
    single-attribute group AUROC, largest sensitivity gap vs reference, and controlled gaps
    when configured) or ``safety`` (overall O/E ratio and calibration slope, worst O/E).
    """
    records = data.get("metrics") or []
    tasks = list(dict.fromkeys(str(r["task"]) for r in records))
    out: list[dict[str, Any]] = []
    for t in tasks:
        if kind == "usefulness":
            for m in ("auroc", "sensitivity", "specificity"):
                v = _value(_overall(records, t, m))
                if v:
                    out.append({"label": f"{t}: overall {m}", "value": v})
        elif kind == "safety":
            for m in ("oe_ratio", "cal_slope"):
                v = _value(_overall(records, t, m))
                if v:
                    out.append({"label": f"{t}: overall {m}", "value": v})
            out += _extreme_group(records, t, "oe_ratio", lambda e: abs(e - 1.0), "worst")
        else:
            out += _extreme_group(records, t, "auroc", lambda e: -e, "lowest")
            out += _largest_gap(data.get("disparities") or [], t, "sensitivity", "crude")
            out += _largest_gap((data.get("extras") or {}).get("controlled_disparities") or [],
                                t, "sensitivity", "controlled")
    return out


def _extreme_group(records: Sequence[Mapping[str, Any]], task: str, metric: str,
                   badness: Any, word: str) -> list[dict[str, Any]]:
    rows = [r for r in records if r["task"] == task and r["metric"] == metric
            and r["attribute"] != OVERALL_ATTRIBUTE and INTERSECTION_SEP not in r["attribute"]
            and r.get("status") == "ok" and is_number(r.get("estimate"))]
    if not rows:
        return []
    r = max(rows, key=lambda r: (badness(float(r["estimate"])), r["attribute"], r["group"]))
    return [{"label": f"{task}: {word} group {metric} "
                      f"({group_phrase(str(r['attribute']), str(r['group']))})",
             "value": _value(r)}]


def _largest_gap(rows: Sequence[Mapping[str, Any]], task: str, metric: str,
                 kind: str) -> list[dict[str, Any]]:
    found = [d for d in rows if d["task"] == task and d["metric"] == metric
             and INTERSECTION_SEP not in d["attribute"] and d.get("status") == "ok"
             and is_number(d.get("difference"))]
    if not found:
        return []
    d = max(found, key=lambda d: (abs(float(d["difference"])), d["attribute"], d["group"]))
    label = (f"{task}: largest {kind} {metric} difference "
             f"({group_phrase(str(d['attribute']), str(d['group']))} vs {d['reference']}"
             + (f", controlled for {d['control']}" if d.get("control") else "") + ")")
    return [{"label": label, "value": {
        "difference": d["difference"], "ci_low": d.get("difference_ci_low"),
        "ci_high": d.get("difference_ci_high"), "ci_method": d.get("ci_method"),
        "p_value": d.get("p_value"), "p_holm": d.get("p_holm")}}]


def metric_text(items: Sequence[Mapping[str, Any]]) -> str:
    """Summarise labelled metric results in one line each."""
    lines = []
    for it in items:
        v = it["value"]
        est = v.get("estimate", v.get("difference"))
        ci = fmt_ci(v.get("ci_low"), v.get("ci_high")) or "not available"
        lines.append(f"{it['label']}: {fmt_num(est)} (95% CI {ci})")
    return "\n".join(lines)


def _cohort_counts(data: Mapping[str, Any]) -> tuple[Any, Any]:
    extra = (data.get("manifest") or {}).get("extra") or {}
    manifest = data.get("manifest") or {}
    return (manifest.get("n_ecgs", extra.get("n_ecgs")),
            manifest.get("n_patients", extra.get("n_patients")))


def testing_data_description(data: Mapping[str, Any]) -> str:
    """Describe the audited data from the result: size, groups, prevalence, input files."""
    records = data.get("metrics") or []
    extras = data.get("extras") or {}
    tasks = list(dict.fromkeys(str(r["task"]) for r in records))
    attrs = [a for a in extras.get("attributes") or [] if a != OVERALL_ATTRIBUTE
             and INTERSECTION_SEP not in a]
    n_ecgs, n_patients = _cohort_counts(data)
    parts = [f"{n_ecgs if n_ecgs is not None else 'an unknown number of'} ECGs"
             + (f" of {n_patients} patients" if n_patients else "")]
    for t in tasks:
        o = _overall(records, t, "auroc")
        if o and is_number(o.get("n")) and is_number(o.get("n_pos")) and o["n"]:
            parts.append(f"{t}: {o['n_pos']} events ({100.0 * o['n_pos'] / o['n']:.1f}%)")
    parts.append("groups by " + (", ".join(attrs) if attrs else "no attribute")
                 + f" (missing values form an explicit '{UNKNOWN_GROUP}' group)")
    names = [str(i.get("name")) for i in (data.get("manifest") or {}).get("inputs") or []]
    if names:
        parts.append("input files: " + ", ".join(names) + " (SHA-256 in the manifest)")
    return "; ".join(parts) + "."


def validation_description(data: Mapping[str, Any]) -> str:
    """Describe how the audit estimated performance and fairness (methods, intervals)."""
    config = (data.get("manifest") or {}).get("config") or {}
    b = int(config.get("bootstrap") or 0)
    ci = (f"{b} stratified bootstrap replicates ({config.get('bootstrap_method', 'percentile')})"
          if b else "closed-form intervals (DeLong for AUROC, Wilson for rates)")
    text = (f"Subgroup audit with ecgaudit: every metric per group with {ci} at level "
            f"{config.get('ci_level', 0.95)}; each group compared with its attribute's "
            "reference group (differences, ratios, Holm and Benjamini-Hochberg adjusted "
            f"p-values); groups under {min_cell_size_of(data.get('manifest'))} patients "
            "suppressed; "
            "operating threshold frozen before the group analysis.")
    if config.get("control"):
        text += (" Disparities are also reported controlled for "
                 + ", ".join(config["control"]) + " (Mantel-Haenszel / inverse-variance "
                 "pooling within strata, with heterogeneity tests).")
    if config.get("continuous_axes"):
        text += (" Performance is also shown as kernel-smoothed curves along "
                 + ", ".join(config["continuous_axes"]) + " with pointwise bootstrap bands.")
    return text


def value_json(value: Any) -> str:
    """Serialise a value deterministically (the CHAI ``ValueJson`` element)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
