"""CHAI Applied Model Card (schema v0.2): the fields one audit result can fill.

The Coalition for Health AI publishes the Applied Model Card as an XML Schema
(``https://mc.chai.org/v0.2/schema.xsd``, repository ``coalition-for-health-ai/mc-schema``,
draft). :func:`chai_card` returns the card as JSON-ready data that mirrors the XSD's element
tree (element names as keys, in schema order), each leaf a provenance field (see
:mod:`ecgaudit.reports._exportcommon`); :func:`chai_card_xml` writes the XSD's XML
(placeholder text in the fields left for the user, since the schema requires every
element). The audit fills the key metrics (usefulness, fairness and equity, safety), the
test-data description and the validation process; intended use, out-of-scope settings,
data sources and equity context come from the config's ``context``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET

from ecgaudit.reports._exportcommon import (
    LEFT_FOR_USER,
    audit_field,
    context_field,
    envelope,
    key_metric_values,
    metric_text,
    testing_data_description,
    user_field,
    validation_description,
    value_json,
)
from ecgaudit.reports._findings import findings, limitations

__all__ = ["CHAI_NAMESPACE", "chai_card", "chai_card_xml"]

CHAI_NAMESPACE = "https://mc.chai.org/v0.2/schema.xsd"
_GOALS = {
    "usefulness": "Discrimination and operating-point accuracy in the audited cohort.",
    "fairness": "No clinically important performance gap between demographic groups.",
    "safety": "Calibrated risk estimates overall and in every group.",
}


def _key_metric(data: Mapping[str, Any], kind: str, interpretation: str) -> dict[str, Any]:
    results = key_metric_values(data, kind)
    return {
        "MetricGoal": audit_field(_GOALS[kind]),
        "Results": [{"Label": r["label"], "ValueJson": value_json(r["value"])}
                    for r in results],
        "Interpretation": audit_field(interpretation or metric_text(results)),
        "TestType": audit_field("Retrospective subgroup performance and fairness audit "
                                "on a held-out dataset (ecgaudit)."),
        "TestingDataDescription": audit_field(testing_data_description(data)),
        "ValidationProcessAndJustification": audit_field(validation_description(data)),
    }


def chai_card(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the CHAI Applied Model Card fields an audit can fill.

    Parameters
    ----------
    data : mapping
        The content of ``results.json`` (``AuditResult.to_dict()``).

    Returns
    -------
    dict
        The export envelope plus ``AppliedModelCard`` in the v0.2 element order.
    """
    manifest = data.get("manifest") or {}
    config = manifest.get("config") or {}
    ctx = config.get("context") or {}
    records, disp = data.get("metrics") or [], data.get("disparities") or []
    extras = data.get("extras") or {}
    tasks = list(dict.fromkeys(str(r["task"]) for r in records))
    min_cell = int(config.get("min_cell_size") or 11)
    found = findings(records, disp, tasks, None, min_cell)
    limits = limitations(records, disp, extras.get("cohort") or [], config,
                         manifest.get("thresholds") or {}, manifest.get("n_ecgs"), min_cell)
    biases = " ".join(found)
    if ctx.get("equity_context"):
        biases = f"{ctx['equity_context']} {biases}"
    card = {
        "BasicInfo": {"ModelName": context_field(ctx, "model_name"),
                      "ModelDeveloper": user_field(), "DeveloperContact": user_field()},
        "ReleaseInfo": {"ReleaseStage": user_field(), "ReleaseDate": user_field(),
                        "ReleaseVersion": context_field(ctx, "model_version"),
                        "GlobalAvailability": user_field()},
        "ModelSummary": {
            "Summary": audit_field(f"Audited for {', '.join(tasks)}: " + " ".join(found[:2])),
            "Keywords": ["ECG", "fairness audit", *tasks]},
        "UsesAndDirections": {
            "IntendedUseAndWorkflow": context_field(ctx, "intended_use"),
            "PrimaryIntendedUsers": user_field(), "HowToUse": user_field(),
            "TargetedPatientPopulation": user_field(),
            "CautionedOutOfScopeSettings": context_field(ctx, "out_of_scope")},
        "Warnings": {"KnownRisksAndLimitations": audit_field(" ".join(limits)),
                     "KnownBiasesOrEthicalConsiderations": audit_field(biases),
                     "ClinicalRiskLevel": user_field()},
        "TrustIngredients": {
            "AISystemFacts": {
                "OutcomesAndOutputs": audit_field(_outputs(manifest, tasks)),
                "ModelType": user_field(),
                "InputDataSource": context_field(ctx, "data_sources"),
                "OutputAndInputDataTypes": user_field(),
                "DevelopmentDataCharacterization": user_field(),
                "BiasMitigationApproaches": user_field(),
                "OngoingMaintenance": user_field()},
            "TransparencyInformation": {"FundingSource": user_field(),
                                        "StakeholdersConsulted": user_field()}},
        "KeyMetrics": {
            "UsefulnessUsabilityEfficacy": _key_metric(data, "usefulness", ""),
            "FairnessEquity": _key_metric(data, "fairness", biases),
            "SafetyReliability": _key_metric(data, "safety", "")},
        "Resources": {"PeerReviewedPublications": user_field(),
                      "PatientConsentOrDisclosure": user_field()},
        "Bibliography": audit_field(_BIBLIOGRAPHY),
    }
    head = envelope("CHAI Applied Model Card", "v0.2", data, CHAI_NAMESPACE,
                    "JSON mirror of the v0.2 XSD element tree; chai_card_xml() writes the "
                    "XSD's XML, validated against the published v0.2 schema in the tests.")
    return {**head, "AppliedModelCard": card}


def _outputs(manifest: Mapping[str, Any], tasks: list[str]) -> str:
    th = manifest.get("thresholds") or {}
    parts = []
    for t in tasks:
        rule = (th.get(t) or {}).get("rule", "fixed")
        value = (th.get(t) or {}).get("value")
        parts.append(f"{t}: probability; flagged at score >= {value} ({rule} threshold rule)")
    return "; ".join(parts) + "."


def _text(field: Any) -> str:
    if isinstance(field, Mapping) and "source" in field:
        return LEFT_FOR_USER if field.get("value") is None else str(field["value"])
    return str(field)


def _add(parent: ET.Element, name: str, value: Any) -> None:
    q = f"{{{CHAI_NAMESPACE}}}"
    el = ET.SubElement(parent, q + name)
    if name == "Keywords":
        for k in value:
            ET.SubElement(el, q + "Keyword").text = str(k)
    elif name == "Results":
        for r in value or [{"Label": "none", "ValueJson": "null"}]:
            m = ET.SubElement(el, q + "MetricResult")
            ET.SubElement(m, q + "Label").text = r["Label"]
            ET.SubElement(m, q + "ValueJson").text = r["ValueJson"]
    elif isinstance(value, Mapping) and "source" not in value:
        for k, v in value.items():
            _add(el, k, v)
    else:
        el.text = _text(value)


def chai_card_xml(card: Mapping[str, Any]) -> str:
    """Serialise :func:`chai_card` output as the CHAI v0.2 XML instance document."""
    ET.register_namespace("", CHAI_NAMESPACE)
    root = ET.Element(f"{{{CHAI_NAMESPACE}}}AppliedModelCard")
    for k, v in card["AppliedModelCard"].items():
        _add(root, k, v)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


_BIBLIOGRAPHY = (
    "@article{delong1988, author={DeLong, E. R. and DeLong, D. M. and Clarke-Pearson, D. L.}, "
    "title={Comparing the areas under two or more correlated receiver operating characteristic "
    "curves: a nonparametric approach}, journal={Biometrics}, volume={44}, pages={837--845}, "
    "year={1988}}\n"
    "@article{collins2024tripodai, author={Collins, G. S. and others}, title={TRIPOD+AI "
    "statement: updated guidance for reporting clinical prediction models that use regression "
    "or machine learning methods}, journal={BMJ}, volume={385}, pages={e078378}, year={2024}}"
)
