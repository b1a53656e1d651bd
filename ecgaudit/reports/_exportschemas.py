"""JSON Schemas (draft 2020-12) of the standards exports, and their validation.

Only the CHAI Applied Model Card has an official machine schema (an XSD, v0.2): its JSON
form here mirrors that element tree, and the XML form is validated against the official XSD
in the tests. HTI-1, TRIPOD+AI and STANDING Together publish none, so these schemas are
ecgaudit's own (``$id`` under ``https://ecgaudit.invalid/schemas/``). Validation needs the
optional ``jsonschema`` package (extra ``ecgaudit[standards]``, part of ``dev``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["export_schema", "validate_export"]

_FIELD = {"type": "object", "required": ["value", "source"], "properties": {
    "value": {}, "source": {"enum": ["audit", "context", "user"]}},
    "additionalProperties": False,
    "if": {"properties": {"source": {"const": "user"}}},
    "then": {"properties": {"value": {"type": "null"}}},
    "else": {"properties": {"value": {"not": {"type": "null"}}}}}
_STR = {"type": "string"}
_ENVELOPE = {
    "standard": _STR, "standard_version": _STR,
    "official_machine_schema": {"type": ["string", "null"]}, "conformance_note": _STR,
    "generated_by": _STR,
    "audit": {"type": "object", "required": ["results_schema_version", "seed", "inputs"],
              "properties": {"inputs": {"type": "array", "items": {
                  "type": "object", "required": ["role", "name", "sha256"]}}}},
}


def _obj(props: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(props), "properties": dict(props),
            "additionalProperties": False}


def _fields(*names: str) -> dict[str, Any]:
    return _obj({n: {"$ref": "#/$defs/field"} for n in names})


def _key_metric() -> dict[str, Any]:
    result = _obj({"Label": _STR, "ValueJson": _STR})
    return _obj({"MetricGoal": {"$ref": "#/$defs/field"},
                 "Results": {"type": "array", "items": result},
                 **{n: {"$ref": "#/$defs/field"} for n in (
                     "Interpretation", "TestType", "TestingDataDescription",
                     "ValidationProcessAndJustification")}})


def _chai() -> dict[str, Any]:
    card = _obj({
        "BasicInfo": _fields("ModelName", "ModelDeveloper", "DeveloperContact"),
        "ReleaseInfo": _fields("ReleaseStage", "ReleaseDate", "ReleaseVersion",
                               "GlobalAvailability"),
        "ModelSummary": _obj({"Summary": {"$ref": "#/$defs/field"},
                              "Keywords": {"type": "array", "items": _STR}}),
        "UsesAndDirections": _fields("IntendedUseAndWorkflow", "PrimaryIntendedUsers",
                                     "HowToUse", "TargetedPatientPopulation",
                                     "CautionedOutOfScopeSettings"),
        "Warnings": _fields("KnownRisksAndLimitations", "KnownBiasesOrEthicalConsiderations",
                            "ClinicalRiskLevel"),
        "TrustIngredients": _obj({
            "AISystemFacts": _fields("OutcomesAndOutputs", "ModelType", "InputDataSource",
                                     "OutputAndInputDataTypes",
                                     "DevelopmentDataCharacterization",
                                     "BiasMitigationApproaches", "OngoingMaintenance"),
            "TransparencyInformation": _fields("FundingSource", "StakeholdersConsulted")}),
        "KeyMetrics": _obj({k: _key_metric() for k in (
            "UsefulnessUsabilityEfficacy", "FairnessEquity", "SafetyReliability")}),
        "Resources": _fields("PeerReviewedPublications", "PatientConsentOrDisclosure"),
        "Bibliography": {"$ref": "#/$defs/field"},
    })
    return {"AppliedModelCard": card}


def _hti1() -> dict[str, Any]:
    attribute = {"type": "object", "required": ["id", "category", "attribute", "value",
                                                "source"],
                 "properties": {"id": {"type": "string", "pattern": "^B[1-8][iv]+$"},
                                "category": _STR, "attribute": _STR, "value": {},
                                "source": {"enum": ["audit", "context", "user"]}},
                 "additionalProperties": False,
                 "if": {"properties": {"source": {"const": "user"}}},
                 "then": {"properties": {"value": {"type": "null"}}},
                 "else": {"properties": {"value": {"type": "string", "minLength": 1}}}}
    return {"evaluation": {"enum": ["local", "internal", "external"]},
            "hti5_note": _STR,
            "attributes": {"type": "array", "items": attribute, "minItems": 28}}


def _tripod() -> dict[str, Any]:
    section = _obj({"id": _STR, "title": _STR, "provides": _STR})
    item = _obj({"item": _STR, "text": _STR, "source": {"enum": ["audit", "user"]},
                 "sections": {"type": "array", "items": section}})
    return {"items": {"type": "array", "items": item, "minItems": 1}}


def _standing() -> dict[str, Any]:
    return {"items": _fields("group_definitions", "representation", "missingness",
                             "intersections", "target_population_comparison",
                             "attribute_collection_method", "dataset_provenance_and_purpose",
                             "known_dataset_biases")}


_BODIES = {"chai": _chai, "hti1": _hti1, "tripod": _tripod, "standing": _standing}
_NAMES = {"chai": "chai-applied-model-card-v0.2-json", "hti1": "hti1-source-attributes-v1",
          "tripod": "tripod-ai-item-map-v1", "standing": "standing-together-items-v1"}


def export_schema(fmt: str) -> dict[str, Any]:
    """Return the JSON Schema of one export format (``chai``, ``hti1``, ...)."""
    body = _BODIES[fmt]()
    props = {**copy.deepcopy(_ENVELOPE), **body}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://ecgaudit.invalid/schemas/{_NAMES[fmt]}.json",
            "title": _NAMES[fmt], "type": "object", "required": list(props),
            "properties": props, "additionalProperties": False,
            "$defs": {"field": copy.deepcopy(_FIELD)}}


def validate_export(export: Mapping[str, Any], fmt: str) -> bool:
    """Validate an export against its schema.

    Returns
    -------
    bool
        True when validated; False when ``jsonschema`` is not installed.

    Raises
    ------
    ValueError
        If the export does not conform (a bug: exports are built to conform).
    """
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - dev installs include it
        return False
    schema = export_schema(fmt)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(export),
                    key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path)) or "(top level)"
        raise ValueError(f"{fmt} export does not match its schema at {where}: "
                         f"{errors[0].message}")
    return True
