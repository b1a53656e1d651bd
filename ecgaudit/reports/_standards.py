"""Exports for standards committees from one audit result (``ecgaudit export``).

Formats:

* ``chai``: CHAI Applied Model Card v0.2 (:mod:`ecgaudit.reports._chai`; XML with ``.xml``);
* ``hti1``: ONC HTI-1 predictive DSI source attributes (:mod:`ecgaudit.reports._hti1`);
* ``tripod``: TRIPOD+AI 2024 item map, from the report crosswalk
  (:data:`ecgaudit.reports._tripod.CROSSWALK`, plus the view sections present), so the
  export and the report's appendix cannot drift apart;
* ``standing``: the STANDING Together dataset-documentation items the audit can answer
  (group definitions, representation, missingness).

Every export is validated against its JSON Schema (:mod:`ecgaudit.reports._exportschemas`)
before it is returned; see ``docs/views.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ecgaudit.reports._chai import chai_card
from ecgaudit.reports._exportcommon import audit_field, envelope, user_field
from ecgaudit.reports._exportschemas import validate_export
from ecgaudit.reports._hti1 import hti1_attributes
from ecgaudit.reports._tripod import CROSSWALK
from ecgaudit.schema import INTERSECTION_SEP, OVERALL_ATTRIBUTE, UNKNOWN_GROUP

__all__ = ["EXPORT_FORMATS", "VIEW_CROSSWALK", "build_export", "tripod_items"]

EXPORT_FORMATS: Final = ("chai", "hti1", "tripod", "standing")

#: TRIPOD+AI items the view sections support, shown when the result has them.
VIEW_CROSSWALK: Final = (
    ("curves_by_value", "views-curves", "Performance along numeric attributes", (
        ("12e", "performance measures and plots used"),
        ("23a", "performance estimates with confidence intervals, including key subgroups"),
    ), "Kernel-smoothed AUROC, sensitivity, specificity and O/E along age (or another "
       "numeric attribute) with pointwise bootstrap bands."),
    ("controlled_disparities", "views-controlled", "Disparities controlled for site", (
        ("14", "approaches used to address model fairness"),
        ("23b", "heterogeneity of performance across clusters (e.g. sites)"),
    ), "Within-stratum comparisons pooled (Mantel-Haenszel / inverse-variance) with "
       "heterogeneity tests, beside the crude disparity."),
)

_FOR_AUTHORS: Final = (
    ("1", "title"), ("2", "abstract"), ("3a", "healthcare context and rationale"),
    ("4", "study objectives"), ("6", "study population and setting"), ("8", "outcome"),
    ("9", "predictors"), ("10", "sample size"), ("12b-d", "model development"),
    ("16-18d", "evaluation, open science and ethics"), ("19", "patient and public involvement"),
    ("22", "model specification"), ("24", "model updating"), ("27b-c", "usability, "
                                                                        "future research"),
)


def tripod_items(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the TRIPOD+AI items, each with the report sections that support it."""
    extras = data.get("extras") or {}
    sections = [(sid, title, items, how) for sid, title, items, how in CROSSWALK]
    sections += [(sid, title, items, how) for key, sid, title, items, how in VIEW_CROSSWALK
                 if extras.get(key)]
    by_item: dict[str, dict[str, Any]] = {}
    for sid, title, items, how in sections:
        for item, text in items:
            entry = by_item.setdefault(item, {"item": item, "text": text, "sections": [],
                                              "source": "audit"})
            entry["sections"].append({"id": sid, "title": title, "provides": how})
    rows = sorted(by_item.values(), key=lambda e: _item_key(e["item"]))
    rows += [{"item": i, "text": t, "sections": [], "source": "user"} for i, t in _FOR_AUTHORS]
    return rows


def _item_key(item: str) -> tuple[int, str]:
    digits = "".join(ch for ch in item if ch.isdigit())
    return int(digits or 0), item


def _standing(data: Mapping[str, Any]) -> dict[str, Any]:
    config = (data.get("manifest") or {}).get("config") or {}
    extras = data.get("extras") or {}
    cohort = [r for r in extras.get("cohort") or []
              if INTERSECTION_SEP not in str(r.get("attribute"))
              and r.get("attribute") != OVERALL_ATTRIBUTE]
    definitions = []
    for name, a in (config.get("attributes") or {}).items():
        d = {"attribute": name, "column": a.get("column"), "kind": a.get("kind"),
             "reference": (extras.get("reference_groups") or {}).get(name),
             "missing_values": list(a.get("missing_values") or []),
             "recode": dict(a.get("recode") or {})}
        if a.get("kind") == "age":
            d["bands"] = list(a.get("bands") or [])
        definitions.append(d)
    n_total = (data.get("manifest") or {}).get("n_ecgs")
    representation = [{"attribute": r["attribute"], "group": r["group"], "n": r.get("n"),
                       "share": (r["n"] / n_total) if r.get("n") is not None and n_total
                       else None, "withheld": r.get("n") is None}
                      for r in cohort]
    missing = [{"attribute": r["attribute"], "share_unknown": x["share"]}
               for r, x in zip(cohort, representation)
               if r["group"] == UNKNOWN_GROUP and x["share"] is not None]
    target = (config.get("context") or {}).get("target_population") or {}
    items = {
        "group_definitions": audit_field(definitions),
        "representation": audit_field(representation),
        "missingness": audit_field(missing),
        "intersections": audit_field(config.get("intersections")),
        "target_population_comparison": audit_field(target) if target else user_field(),
        "attribute_collection_method": user_field(),
        "dataset_provenance_and_purpose": user_field(),
        "known_dataset_biases": user_field(),
    }
    return items


def build_export(data: Mapping[str, Any], fmt: str, *, evaluation: str = "local"
                 ) -> dict[str, Any]:
    """Build and validate one standards export of an audit result.

    Parameters
    ----------
    data : mapping
        The content of ``results.json`` (``AuditResult.to_dict()``).
    fmt : {"chai", "hti1", "tripod", "standing"}
        The export format.
    evaluation : {"local", "internal", "external"}
        For ``hti1``: what the audited data are relative to the training data.

    Returns
    -------
    dict
        JSON-ready export (schema-valid).

    Raises
    ------
    ValueError
        For an unknown format or evaluation.
    """
    if fmt == "chai":
        out = chai_card(data)
    elif fmt == "hti1":
        out = hti1_attributes(data, evaluation)
    elif fmt == "tripod":
        out = {**envelope("TRIPOD+AI", "2024 (Collins et al., BMJ 2024;385:e078378)", data,
                          None, "No official machine-readable schema is published for "
                          "TRIPOD+AI; this export validates against ecgaudit's own JSON "
                          "Schema (tripod-ai-item-map v1)."),
               "items": tripod_items(data)}
    elif fmt == "standing":
        out = {**envelope("STANDING Together", "consensus recommendations v1 (2023; "
                          "Lancet Digital Health 2025)", data, None,
                          "No official machine-readable schema is published; this export "
                          "validates against ecgaudit's own JSON Schema "
                          "(standing-together-items v1)."), "items": _standing(data)}
    else:
        raise ValueError(f"unknown export format {fmt!r}; valid: {list(EXPORT_FORMATS)}")
    validate_export(out, fmt)
    return out
