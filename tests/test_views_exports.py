"""Standards exports: schema validation (official CHAI XSD; our JSON Schemas), provenance, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import xmlschema
import yaml
from typer.testing import CliRunner

import ecgaudit
from ecgaudit.cli import app
from ecgaudit.reports._chai import chai_card_xml
from ecgaudit.reports._exportschemas import export_schema
from ecgaudit.reports._standards import EXPORT_FORMATS, build_export
from ecgaudit.reports._tripod import CROSSWALK

ROOT = Path(__file__).resolve().parents[1]
PTBXL = ROOT / "examples" / "ptbxl"
XSD = Path(__file__).parent / "fixtures" / "standards" / "chai_mc_v0.2.xsd"
EVIL = '<script>alert(1)</script>&"'


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    cfg = yaml.safe_load((PTBXL / "audit_views.yaml").read_text())
    cfg["bootstrap"] = 0
    cfg["context"]["equity_context"] = EVIL
    cfg["tasks"] = cfg["tasks"][:2]  # NORM, AFIB: enough for the exports, faster
    result = ecgaudit.audit_files(PTBXL / "predictions.csv", cfg,
                                  metadata=PTBXL / "metadata.csv")
    out = tmp_path_factory.mktemp("exports")
    result.save(out)
    return out / "results.json", result.to_dict()


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_every_export_validates_against_its_json_schema(saved, fmt) -> None:
    export = build_export(saved[1], fmt)
    jsonschema.Draft202012Validator.check_schema(export_schema(fmt))
    jsonschema.validate(export, export_schema(fmt), cls=jsonschema.Draft202012Validator)
    assert export["audit"]["inputs"][0]["name"] == "predictions.csv"
    json.dumps(export, allow_nan=False)  # plain JSON


def test_chai_xml_validates_against_the_published_v02_xsd(saved) -> None:
    card = build_export(saved[1], "chai")
    xml = chai_card_xml(card)
    xmlschema.XMLSchema(XSD).validate(xml)
    assert "<script>" not in xml and "&lt;script&gt;" in xml  # escaped
    fair = card["AppliedModelCard"]["KeyMetrics"]["FairnessEquity"]
    labels = [r["Label"] for r in fair["Results"]]
    assert any("lowest group auroc" in x for x in labels)
    assert any("controlled for site" in x for x in labels)
    values = [json.loads(r["ValueJson"]) for r in fair["Results"]]
    assert all(v.get("estimate", v.get("difference")) is not None for v in values)


def test_chai_fields_are_marked_by_source(saved) -> None:
    data = saved[1]
    card = build_export(data, "chai")["AppliedModelCard"]
    ctx = data["manifest"]["config"]["context"]
    uses = card["UsesAndDirections"]
    assert uses["IntendedUseAndWorkflow"] == {"value": ctx["intended_use"], "source": "context"}
    assert uses["PrimaryIntendedUsers"] == {"value": None, "source": "user"}
    tdd = card["KeyMetrics"]["FairnessEquity"]["TestingDataDescription"]
    assert tdd["source"] == "audit" and "2203 ECGs" in tdd["value"]


def test_schema_rejects_a_user_field_with_a_value(saved) -> None:
    export = build_export(saved[1], "chai")
    export["AppliedModelCard"]["BasicInfo"]["ModelDeveloper"]["value"] = "invented"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(export, export_schema("chai"),
                            cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(("evaluation", "validity", "fairness"), [
    ("local", "B8ii", "B8iii"), ("internal", "B7i", "B7ii"), ("external", "B7iii", "B7iv")])
def test_hti1_fills_the_validity_attributes_of_the_evaluation(saved, evaluation, validity,
                                                              fairness) -> None:
    export = build_export(saved[1], "hti1", evaluation=evaluation)
    attrs = {a["id"]: a for a in export["attributes"]}
    assert attrs[validity]["source"] == attrs[fairness]["source"] == "audit"
    assert "auroc" in attrs[validity]["value"]
    others = {"B7i", "B7ii", "B7iii", "B7iv", "B8ii", "B8iii"} - {validity, fairness}
    assert all(attrs[o]["source"] == "user" and attrs[o]["value"] is None for o in others)
    assert attrs["B2i"]["source"] == "context"
    assert attrs["B1ii"]["source"] == "user"  # funding: never guessed
    assert "2025-23896" in export["hti5_note"]
    assert export["official_machine_schema"] is None


def test_tripod_map_keeps_in_step_with_the_report_crosswalk(saved) -> None:
    items = {i["item"]: i for i in build_export(saved[1], "tripod")["items"]}
    for sid, _title, pairs, _how in CROSSWALK:
        for item, _text in pairs:
            assert sid in [s["id"] for s in items[item]["sections"]]
    assert "views-controlled" in [s["id"] for s in items["23b"]["sections"]]
    assert "views-curves" in [s["id"] for s in items["12e"]["sections"]]
    assert items["1"]["source"] == "user"


def test_standing_items_answer_groups_representation_missingness(saved) -> None:
    data = saved[1]
    items = build_export(data, "standing")["items"]
    defs = {d["attribute"]: d for d in items["group_definitions"]["value"]}
    assert defs["age"]["bands"] == [40.0, 60.0, 80.0] and defs["sex"]["reference"] == "male"
    rep = items["representation"]["value"]
    assert all(r["n"] is None or r["n"] > 10 for r in rep)  # no small count
    unknown = [m for m in items["missingness"]["value"] if m["attribute"] == "age"]
    cohort = {(r["attribute"], r["group"]): r["n"] for r in data["extras"]["cohort"]}
    assert cohort[("age", "Unknown")] > 10  # PTB-XL has ages recorded as unknown
    assert unknown[0]["share_unknown"] == pytest.approx(
        cohort[("age", "Unknown")] / data["manifest"]["n_ecgs"])
    assert items["attribute_collection_method"]["source"] == "user"


def test_export_cli_writes_json_and_xml_and_rejects_bad_input(saved, tmp_path) -> None:
    runner = CliRunner()
    path = saved[0]
    ok = runner.invoke(app, ["export", str(path), "--format", "hti1", "--evaluation",
                             "external", "-o", str(tmp_path / "hti1.json")])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "hti1.json").read_text())["evaluation"] == "external"
    xml = runner.invoke(app, ["export", str(path), "-f", "chai", "-o",
                              str(tmp_path / "card.xml")])
    assert xml.exit_code == 0
    xmlschema.XMLSchema(XSD).validate(str(tmp_path / "card.xml"))
    bad = runner.invoke(app, ["export", str(path), "-f", "nope", "-o", str(tmp_path / "x.json")])
    assert bad.exit_code == 2 and "--format 'nope'" in bad.output
    bad_xml = runner.invoke(app, ["export", str(path), "-f", "hti1", "-o",
                                  str(tmp_path / "x.xml")])
    assert bad_xml.exit_code == 2 and not (tmp_path / "x.xml").exists()


def test_report_view_model_of_the_views(saved) -> None:
    from ecgaudit.reports._viewsection import views_section

    data = saved[1]
    w = views_section(data, figures=False)
    assert [c["by"] for c in w["curves"]] == ["sex", "sex"]  # NORM, AFIB
    assert w["axes"][0]["rule"] == "silverman"
    rows = w["controlled"]["tasks"][0]["rows"]
    assert {r["metric"] for r in rows} == {"auroc", "sensitivity", "specificity"}
    assert w["controlled"]["control"] == "site"
    counts = w["standards"]["chai_counts"]
    assert counts["audit"] > 0 and counts["context"] > 0 and counts["user"] > 0
    assert {c["id"] for c in w["crosswalk"]} == {"views-curves", "views-controlled"}
    bare = dict(data, extras={k: v for k, v in data["extras"].items()
                              if k not in ("curves_by_value", "curves_by_value_axes",
                                           "controlled_disparities", "control")})
    plain = views_section(bare, figures=False)
    assert plain["curves"] == [] and plain["controlled"] is None and plain["crosswalk"] == []
    assert len(plain["standards"]["hti1"]) == 28
