"""ONC HTI-1 predictive decision support intervention (DSI) source attributes.

The HTI-1 final rule (89 FR 1192, 9 January 2024) requires certified health IT to make
source attributes of predictive DSIs available to users: 45 CFR
170.315(b)(11)(iv)(B)(1)-(8). The attribute wording below is our transcription of that
paragraph (check it against the eCFR text before filing). The rule publishes no machine
schema; the export follows our own JSON Schema (:mod:`ecgaudit.reports._exportschemas`).

Each attribute is marked as filled from the audit, from the config's ``context``, or left
for the user. Which of the validity / fairness attributes the audit fills depends on what
the audited data are relative to the model's training data (``evaluation``): ``internal``
(test data from the training source, (B)(7)(i)-(ii)), ``external`` (a different source,
(B)(7)(iii)-(iv) and (B)(6)) or ``local`` (the deployer's own data, (B)(8)(ii)-(iii)).

The proposed HTI-5 rule (ASTP/ONC, "Deregulatory Actions To Unleash Prosperity", Federal
Register 29 December 2025, document 2025-23896) would remove the DSI source-attribute
("model card") requirements; until a final rule says so they remain in force.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ecgaudit.privacy import min_cell_size_of
from ecgaudit.reports._exportcommon import (
    audit_field,
    context_field,
    envelope,
    key_metric_values,
    metric_text,
    testing_data_description,
    user_field,
    validation_description,
)
from ecgaudit.reports._findings import limitations

__all__ = ["EVALUATIONS", "HTI1_ATTRIBUTES", "HTI5_NOTE", "hti1_attributes"]

EVALUATIONS: Final = ("local", "internal", "external")
HTI5_NOTE: Final = (
    "The proposed HTI-5 rule (ASTP/ONC, Federal Register 29 December 2025, document "
    "2025-23896) would remove the DSI source-attribute requirements of 45 CFR "
    "170.315(b)(11); they remain in force unless a final rule removes them.")

#: ``(id, category, attribute)``; ids follow 45 CFR 170.315(b)(11)(iv)(B).
HTI1_ATTRIBUTES: Final[tuple[tuple[str, str, str], ...]] = (
    ("B1i", "Details and output", "Name and contact information for the intervention developer"),
    ("B1ii", "Details and output", "Funding source of the intervention's development"),
    ("B1iii", "Details and output", "Description of the value that the intervention produces "
                                    "as an output"),
    ("B1iv", "Details and output", "Whether the output is a prediction, classification, "
                                   "recommendation, evaluation, analysis, or other type"),
    ("B2i", "Purpose", "Intended use of the intervention"),
    ("B2ii", "Purpose", "Intended patient population(s) for the intervention's use"),
    ("B2iii", "Purpose", "Intended user(s)"),
    ("B2iv", "Purpose", "Intended decision-making role for which the intervention was designed"),
    ("B3i", "Cautioned out-of-scope use", "Tasks, situations, or populations where a user is "
                                          "cautioned against applying the intervention"),
    ("B3ii", "Cautioned out-of-scope use", "Known risks, inappropriate settings, inappropriate "
                                           "uses, or known limitations"),
    ("B4i", "Development details and input features", "Exclusion and inclusion criteria that "
                                                      "influenced the training data set"),
    ("B4ii", "Development details and input features", "Use of the (A)(5) demographic and "
                                                       "social variables as input features"),
    ("B4iii", "Development details and input features", "Demographic representativeness "
                                                        "according to the (A)(5) variables"),
    ("B4iv", "Development details and input features", "Relevance of training data to the "
                                                       "intended deployed setting"),
    ("B5i", "Fairness in development", "Approach taken to ensure that the output is fair"),
    ("B5ii", "Fairness in development", "Approaches to manage, reduce, or eliminate bias"),
    ("B6i", "External validation process", "Data source, clinical setting, or environment "
                                           "where validity and fairness were assessed, other "
                                           "than the training and testing source"),
    ("B6ii", "External validation process", "Party that conducted the external testing"),
    ("B6iii", "External validation process", "Demographic representativeness of the external "
                                             "data according to the (A)(5) variables"),
    ("B6iv", "External validation process", "Description of the external validation process"),
    ("B7i", "Quantitative measures of performance", "Validity in test data derived from the "
                                                    "same source as the training data"),
    ("B7ii", "Quantitative measures of performance", "Fairness in test data derived from the "
                                                     "same source as the training data"),
    ("B7iii", "Quantitative measures of performance", "Validity in data external to or from a "
                                                      "different source than the training data"),
    ("B7iv", "Quantitative measures of performance", "Fairness in data external to or from a "
                                                     "different source than the training data"),
    ("B7v", "Quantitative measures of performance", "References to evaluation of the effect "
                                                    "of the intervention on outcomes"),
    ("B8i", "Ongoing maintenance", "Update and continued validation or fairness assessment "
                                   "schedule"),
    ("B8ii", "Ongoing maintenance", "Validity of the intervention in local data"),
    ("B8iii", "Ongoing maintenance", "Fairness of the intervention in local data"),
)

_VALIDITY = {"internal": "B7i", "external": "B7iii", "local": "B8ii"}
_FAIRNESS = {"internal": "B7ii", "external": "B7iv", "local": "B8iii"}


def _representation(data: Mapping[str, Any]) -> str:
    rows = (data.get("extras") or {}).get("cohort") or []
    parts = []
    for r in rows:
        if " & " in str(r.get("attribute")) or r.get("n") is None:
            continue
        parts.append(f"{r['attribute']} {r['group']}: {r['n']}")
    return ("Audited data by group (ECGs; groups under the small-cell limit withheld): "
            + "; ".join(parts) + ".") if parts else ""


def hti1_attributes(data: Mapping[str, Any], evaluation: str = "local") -> dict[str, Any]:
    """Return the HTI-1 source attributes, each marked audit / context / user.

    Parameters
    ----------
    data : mapping
        The content of ``results.json``.
    evaluation : {"local", "internal", "external"}
        What the audited data are relative to the training data (decides which validity
        and fairness attributes the audit fills).

    Returns
    -------
    dict
        The export envelope plus ``evaluation``, ``hti5_note`` and ``attributes``.
    """
    if evaluation not in EVALUATIONS:
        raise ValueError(f"evaluation must be one of {EVALUATIONS}, not {evaluation!r}")
    manifest = data.get("manifest") or {}
    config = manifest.get("config") or {}
    ctx = config.get("context") or {}
    validity = metric_text(key_metric_values(data, "usefulness")
                           + key_metric_values(data, "safety"))
    fairness = metric_text(key_metric_values(data, "fairness"))
    limits = " ".join(limitations(
        data.get("metrics") or [], data.get("disparities") or [],
        (data.get("extras") or {}).get("cohort") or [], config,
        manifest.get("thresholds") or {}, manifest.get("n_ecgs"),
        min_cell_size_of(manifest)))
    filled: dict[str, dict[str, Any]] = {
        "B2i": context_field(ctx, "intended_use"),
        "B3i": context_field(ctx, "out_of_scope"),
        "B3ii": audit_field(limits) if limits else user_field(),
        _VALIDITY[evaluation]: audit_field(f"{validity}\n{testing_data_description(data)}"),
        _FAIRNESS[evaluation]: audit_field(f"{fairness}\n{validation_description(data)}"),
    }
    if evaluation == "external":
        filled["B6i"] = context_field(ctx, "data_sources")
        filled["B6iii"] = audit_field(_representation(data))
        filled["B6iv"] = audit_field(validation_description(data))
    attributes = [{"id": aid, "category": cat, "attribute": text,
                   **filled.get(aid, user_field())} for aid, cat, text in HTI1_ATTRIBUTES]
    head = envelope(
        "ONC HTI-1 predictive DSI source attributes", "45 CFR 170.315(b)(11)(iv)(B), HTI-1 "
        "final rule (89 FR 1192, 2024-01-09)", data, None,
        "No official machine-readable schema is published for the source attributes; this "
        "export validates against ecgaudit's own JSON Schema (hti1-source-attributes v1).")
    return {**head, "evaluation": evaluation, "hti5_note": HTI5_NOTE,
            "attributes": attributes}
