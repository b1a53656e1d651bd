"""JUnit XML: valid against the common JUnit schema and read back by junitparser.

The documents are validated twice: by ``xmlschema`` (a full XML Schema implementation, a dev
dependency) and by the small validator below, which interprets the subset of XML Schema that ``tests/fixtures/junit/junit.xsd`` uses: global elements referenced by
``ref``, ``sequence``/``choice`` content models with min/maxOccurs (compiled to a regular
expression over child tags), ``mixed`` content, simple-typed elements and typed, required
attributes. The rules are read from the XSD file, not restated here.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import junitparser
import pytest

from ecgaudit.policy import GateResult, evaluate, parse_policy
from tests.test_policy_evaluate import disp_row, make_result, metric_row

XSD = Path(__file__).parent / "fixtures" / "junit" / "junit.xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"
_TYPES = {
    "xs:string": lambda v: True,
    "xs:decimal": lambda v: re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", v) is not None,
    "xs:nonNegativeInteger": lambda v: re.fullmatch(r"\+?\d+", v) is not None,
}


class MiniXsd:
    def __init__(self, path: Path) -> None:
        root = ET.parse(path).getroot()
        self.elements = {e.get("name"): e for e in root.findall(f"{XS}element")}

    def _model(self, node: ET.Element) -> str:
        tag = node.tag.removeprefix(XS)
        lo, hi = node.get("minOccurs", "1"), node.get("maxOccurs", "1")
        hi = "" if hi == "unbounded" else hi
        if tag == "element":
            body = f"<{node.get('ref')}>"
        elif tag == "sequence":
            body = "".join(self._model(c) for c in node)
        elif tag == "choice":
            body = "|".join(self._model(c) for c in node)
        else:
            raise AssertionError(f"unsupported XSD construct {tag}")
        return f"(?:{body}){{{lo},{hi}}}"

    def validate(self, el: ET.Element, path: str = "") -> list[str]:
        where = f"{path}/{el.tag}"
        decl = self.elements.get(el.tag)
        if decl is None:
            return [f"{where}: element not declared in the schema"]
        errors: list[str] = []
        simple = decl.get("type")
        if simple is not None:
            if len(el) or el.attrib:
                errors.append(f"{where}: simple-typed element has children/attributes")
            return errors
        ctype = decl.find(f"{XS}complexType")
        assert ctype is not None
        attrs = {a.get("name"): a for a in ctype.findall(f"{XS}attribute")}
        for name, value in el.attrib.items():
            if name not in attrs:
                errors.append(f"{where}: attribute '{name}' not allowed")
            elif not _TYPES[attrs[name].get("type", "xs:string")](value):
                errors.append(f"{where}: attribute '{name}'={value!r} is not "
                              f"{attrs[name].get('type')}")
        for name, a in attrs.items():
            if a.get("use") == "required" and name not in el.attrib:
                errors.append(f"{where}: required attribute '{name}' missing")
        groups = [c for c in ctype if c.tag in (f"{XS}sequence", f"{XS}choice")]
        pattern = "".join(self._model(g) for g in groups)
        children = "".join(f"<{c.tag}>" for c in el)
        if not re.fullmatch(pattern, children):
            errors.append(f"{where}: children {children!r} do not match {pattern!r}")
        if ctype.get("mixed") != "true":
            texts = [el.text, *(c.tail for c in el)]
            if any(t and t.strip() for t in texts):
                errors.append(f"{where}: text content not allowed")
        for c in el:
            errors += self.validate(c, where)
        return errors


def _gate(on_inconclusive: str = "fail") -> GateResult:
    res = make_result([
        metric_row("White", 0.9, 0.88, 0.92),
        metric_row("Black", 0.7, 0.65, 0.75),
        metric_row("Asian", 0.82, 0.7, 0.94),
        metric_row("Other & <40", float("nan"), float("nan"), float("nan"),
                   attribute="race & age", status="suppressed", reason="n < 11 <&>"),
    ], [disp_row("Black", -0.15, -0.22, -0.08), disp_row("Asian", 0.01, -0.03, 0.04)])
    policy = parse_policy({"name": "ci <policy> & \"quotes\"", "on_inconclusive": on_inconclusive,
                           "rules": [
        {"id": "auroc-floor", "metric": "auroc", "min": 0.8},
        {"metric": "sensitivity", "max_abs_difference": 0.05},
        {"metric": "auroc", "min": 0.85, "required": False, "attributes": ["race"]},
    ]})
    return evaluate(res, policy)


def test_schema_validator_rejects_invalid_documents() -> None:
    xsd = MiniXsd(XSD)
    bad = [
        "<testsuites><testsuite tests='1'/></testsuites>",               # name missing
        "<testsuites><testsuite name='a' tests='x'/></testsuites>",      # tests not integer
        "<testsuites><testcase name='a'/></testsuites>",                 # wrong nesting
        "<testsuites><testsuite name='a' tests='1'><testcase name='t'/>"
        "<properties/></testsuite></testsuites>",                        # order
        "<testsuites><testsuite name='a' tests='1'><testcase name='t' bogus='1'/>"
        "</testsuite></testsuites>",                                     # unknown attribute
    ]
    for doc in bad:
        assert xsd.validate(ET.fromstring(doc)), doc
    ok = ("<testsuites><testsuite name='a' tests='1'><properties><property name='k' value='v'/>"
          "</properties><testcase name='t' time='0.5'><failure message='m'>why</failure>"
          "</testcase></testsuite></testsuites>")
    assert xsd.validate(ET.fromstring(ok)) == []


@pytest.mark.parametrize("on_inconclusive", ["fail", "warn"])
def test_junit_validates_against_the_schema(on_inconclusive: str) -> None:
    xml = _gate(on_inconclusive).to_junit_xml()
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(xml.encode("utf-8"))
    assert MiniXsd(XSD).validate(root) == []


def test_junit_is_read_back_by_junitparser_with_matching_counts(tmp_path: Path) -> None:
    gate = _gate()
    path = tmp_path / "gate.xml"
    path.write_text(gate.to_junit_xml(), encoding="utf-8")
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert [s.name for s in suites] == list(dict.fromkeys(o.rule_id for o in gate.outcomes))
    cases = [c for s in suites for c in s]
    assert len(cases) == len(gate.outcomes)   # one testcase per rule x task x group
    kinds = []
    for case, o in zip(cases, gate.outcomes):
        assert case.name == o.where
        assert case.classname == f"ecgaudit.gate.{o.rule_id}"
        result = case.result
        kinds.append(type(result[0]).__name__ if result else "pass")
        if o.outcome == "fail" and o.required:
            assert isinstance(result[0], junitparser.Failure)
            assert result[0].message == o.detail
    expected = []
    for o in gate.outcomes:
        if o.outcome == "pass":
            expected.append("pass")
        elif o.outcome == "fail":
            expected.append("Failure" if o.required else "Skipped")
        else:
            expected.append("Error" if o.required else "Skipped")
    assert kinds == expected
    totals = {"failures": 0, "errors": 0, "skipped": 0, "tests": 0}
    for s in suites:
        for k in totals:
            totals[k] += int(getattr(s, k))
    assert totals["tests"] == len(gate.outcomes)
    assert totals["failures"] == sum(o.outcome == "fail" and o.required for o in gate.outcomes)
    assert totals["errors"] == len(gate.blocking_inconclusive)
    assert totals["failures"] > 0 and totals["errors"] > 0 and totals["skipped"] > 0


def test_warned_inconclusive_is_skipped_not_error() -> None:
    root = ET.fromstring(_gate("warn").to_junit_xml().encode("utf-8"))
    assert root.get("errors") == "0"
    assert int(root.get("skipped") or 0) >= 1
    assert root.get("name") == 'ecgaudit gate: ci <policy> & "quotes"'


@pytest.mark.parametrize("on_inconclusive", ["fail", "warn"])
def test_junit_validates_with_a_real_xsd_validator(on_inconclusive: str) -> None:
    """The same schema through xmlschema (a full XML Schema 1.0 implementation)."""
    import xmlschema

    schema = xmlschema.XMLSchema(str(XSD))
    xml = _gate(on_inconclusive).to_junit_xml()
    schema.validate(xml)  # raises XMLSchemaValidationError on any violation
    broken = xml.replace("<testcase ", "<testcase bogus=\"1\" ", 1)
    assert not schema.is_valid(broken)
