"""The HTML report rendered from real audits: PTB-XL example and the synthetic race cohort.

Expected values come from the saved ``metrics.csv`` / ``disparities.csv`` read back with
pandas and formatted here, and from counts computed directly on the input rows; the report
code is never its own oracle.
"""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ecgaudit
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.policy import evaluate, parse_policy
from ecgaudit.reports import build_view, render_html, write_report
from ecgaudit.reports._render import render_view

ROOT = Path(__file__).resolve().parents[1]
PTBXL = ROOT / "examples" / "ptbxl"
SECTIONS = ("summary", "context", "cohort", "methods", "performance", "calibration",
            "disparities", "limitations", "reproducibility", "tripod")
SUPPRESSED = "suppressed (privacy)"


class Tables(HTMLParser):
    """Collect every table row and cell (with its est / ci spans) and all ids and hrefs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[dict[str, Any]] = []
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self._row: dict[str, Any] | None = None
        self._cell: dict[str, Any] | None = None
        self._span: str | None = None
        self._svg = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href", "").startswith("#"):
            self.hrefs.append(a["href"][1:])
        if tag == "svg":
            self._svg += 1
        if tag == "table":
            self.tables.append({"attrs": a, "rows": []})
        elif tag == "tr" and self.tables:
            self._row = {"attrs": a, "cells": []}
            self.tables[-1]["rows"].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = {"tag": tag, "attrs": a, "text": "", "est": "", "ci": ""}
            self._row["cells"].append(self._cell)
        elif tag == "span" and self._cell is not None:
            self._span = a.get("class")

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg -= 1
        elif tag == "span":
            self._span = None
        elif tag in ("td", "th"):
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if not self._svg:
            self.text.append(data)
        if self._cell is not None:
            self._cell["text"] += data
            if self._span in ("est", "ci"):
                self._cell[self._span] += data


def parse(html: str) -> Tables:
    p = Tables()
    p.feed(html)
    return p


def fmt(x: float) -> str:
    text = f"{x:.3f}"
    return "0.000" if text == "-0.000" else text  # the report prints no negative zero


def _synthetic_config() -> dict[str, Any]:
    return {
        "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"},
                  {"name": "af", "label": "y_af", "score": "p_af"}],
        "attributes": {"race": {"reference": "White"}, "sex": {}, "age": {"kind": "age"}},
        "patient_column": "patient_id",
        "threshold": {"rule": "fixed", "value": 0.3},
        "context": {"model_name": "Synthetic model", "intended_use": "Testing the report.",
                    "target_population": {"sex": {"female": 0.5, "male": 0.5}}},
    }


@pytest.fixture(scope="module")
def ptbxl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("ptbxl")
    result = ecgaudit.audit_files(PTBXL.resolve() / "predictions.csv", PTBXL.resolve() / "audit.yaml",
                                  metadata=PTBXL.resolve() / "metadata.csv")
    result.save(out)
    path = write_report(result, out / "report.html")
    return {"result": result, "html": path.read_text(encoding="utf-8"), "dir": out,
            "metrics": pd.read_csv(out / "metrics.csv", keep_default_na=False,
                                   na_values=[""]),
            "disparities": pd.read_csv(out / "disparities.csv", keep_default_na=False,
                                       na_values=[""])}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    frame = make_synthetic_cohort(
        3000, seed=11, tasks=("hf", "af"), group_separation={"Black": 0.9},
        group_shift={"Asian": 0.8}).frame
    result = ecgaudit.audit(frame, _synthetic_config())
    out = tmp_path_factory.mktemp("synth")
    result.save(out)
    return {"frame": frame, "result": result, "dir": out,
            "metrics": pd.read_csv(out / "metrics.csv", keep_default_na=False, na_values=[""]),
            "disparities": pd.read_csv(out / "disparities.csv", keep_default_na=False,
                                       na_values=[""])}


def _metric_cells(html: str) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """(task, attribute, group, metric) -> cell of the performance / calibration tables."""
    cells = {}
    for table in parse(html).tables:
        if table["attrs"].get("class") != "metric-table":
            continue
        task = table["attrs"]["data-task"]
        for row in table["rows"]:
            ra = row["attrs"]
            if "data-group" not in ra:
                continue
            n_cell, pos_cell = row["cells"][1], row["cells"][2]
            for c in row["cells"][3:]:
                cells[(task, ra["data-attribute"], ra["data-group"], c["attrs"]["data-metric"])] = {
                    **c, "n": n_cell["text"].strip(), "n_pos": pos_cell["text"].strip()}
    return cells


def _suppressed_groups(html: str) -> dict[tuple[str, str], set[str]]:
    """(table class, task) -> group names listed in the collapsed 'suppressed' rows."""
    out: dict[tuple[str, str], set[str]] = {}
    for table in parse(html).tables:
        for row in table["rows"]:
            if row["attrs"].get("class") == "suppressed-groups":
                text = row["cells"][1]["text"].split(": ", 1)[1]
                key = (table["attrs"].get("class", ""), table["attrs"].get("data-task", ""))
                out.setdefault(key, set()).update(
                    f"{row['attrs']['data-attribute']}|{g}" for g in text.split("; "))
    return out


def _check_numbers(html: str, metrics: pd.DataFrame) -> int:
    cells = _metric_cells(html)
    collapsed = _suppressed_groups(html)
    checked = 0
    for r in metrics.itertuples(index=False):
        key = (r.task, r.attribute, str(r.group), r.metric)
        if key not in cells:
            in_list = any(f"{r.attribute}|{r.group}" in names
                          for (cls, task), names in collapsed.items() if task == r.task)
            if r.metric in ("fnr", "fpr"):
                continue  # complements of sensitivity / specificity, not tabulated
            assert in_list and r.status == "suppressed", key
            checked += 1
            continue
        cell = cells[key]
        if r.status in ("ok", "unstable"):
            assert cell["est"] == fmt(r.estimate), key
            if not (math.isnan(r.ci_low) or math.isnan(r.ci_high)):
                assert cell["ci"] == f"{fmt(r.ci_low)} to {fmt(r.ci_high)}", key
            n_pos = "–" if pd.isna(r.n_pos) else str(int(r.n_pos))  # withheld: a small cell
            assert cell["n"] == str(int(r.n)) and cell["n_pos"] == n_pos, key
        elif r.status == "suppressed":
            assert SUPPRESSED in cell["text"] and not re.search(r"\d\.\d", cell["text"]), key
        else:
            assert cell["text"].startswith("insufficient: "), key
            assert str(r.reason) in cell["text"] and not re.search(r"\d\.\d", cell["text"])
        checked += 1
    return checked


def test_ptbxl_numbers_equal_metrics_csv(ptbxl: dict[str, Any]) -> None:
    metrics = ptbxl["metrics"]
    checked = _check_numbers(ptbxl["html"], metrics)
    assert checked == int((~metrics["metric"].isin(["fnr", "fpr"])).sum())
    assert set(metrics["status"]) >= {"ok", "suppressed", "insufficient"}


def test_synthetic_numbers_equal_metrics_csv(synth: dict[str, Any]) -> None:
    html = render_html(synth["result"])
    assert _check_numbers(html, synth["metrics"]) > 500


def test_every_section_and_task_anchor_present(ptbxl: dict[str, Any]) -> None:
    doc = parse(ptbxl["html"])
    for section in SECTIONS:
        assert section in doc.ids, section
    tasks = list(dict.fromkeys(ptbxl["metrics"]["task"]))
    assert len(tasks) == 6
    # Every internal link (task selector, table of contents, footnotes) has a target.
    missing = {h for h in doc.hrefs if h not in doc.ids}
    assert not missing
    for task in tasks:
        anchors = [h for h in doc.hrefs if h.endswith("-performance") and task.lower() in h]
        assert anchors, task
    text = " ".join(doc.text)
    assert "TRIPOD+AI" in text and "23a" in text
    assert "PTB-XL v1.0.1 test fold" in text  # data_sources context shown


def test_suppressed_cells_show_no_numbers(ptbxl: dict[str, Any]) -> None:
    metrics = ptbxl["metrics"]
    status = metrics.groupby(["attribute", "group"])["status"].agg(set)
    fully = {f"{a}|{g}" for (a, g), s in status.items() if s == {"suppressed"}}
    partly = {f"{a}|{g}" for (a, g), s in status.items() if "suppressed" in s} - fully
    assert len(fully) > 20
    doc = parse(ptbxl["html"])
    listed: dict[str, set[str]] = {}
    for table in doc.tables:
        cls = table["attrs"].get("class", "")
        for row in table["rows"]:
            key = f"{row['attrs'].get('data-attribute')}|{row['attrs'].get('data-group')}"
            if row["attrs"].get("class") == "suppressed-groups":
                # the collapsed row lists group names only: every one fully suppressed
                names = row["cells"][1]["text"].split(": ", 1)[1].split("; ")
                listed.setdefault(cls, set()).update(
                    f"{row['attrs']['data-attribute']}|{n}" for n in names)
                assert row["cells"][1]["text"].startswith(f"{len(names)} group")
            elif key in fully:
                pytest.fail(f"suppressed group {key} has its own row in {cls}")
            elif key in partly:  # some metrics suppressed: those cells hold no digits
                for c in row["cells"][1:]:
                    if SUPPRESSED in c["text"]:
                        assert not re.search(r"\d", c["text"].replace(SUPPRESSED, ""))
    assert listed["cohort-table"] == fully
    assert listed["metric-table"] == fully


def test_cohort_counts_match_input_rows(ptbxl: dict[str, Any]) -> None:
    pred = pd.read_csv(PTBXL / "predictions.csv")
    meta = pd.read_csv(PTBXL / "metadata.csv")
    frame = pred.merge(meta, on="ecg_id")
    counts = frame["sex"].value_counts()
    total = len(frame)
    doc = parse(ptbxl["html"])
    table = next(t for t in doc.tables if t["attrs"].get("class") == "cohort-table"
                 and t["attrs"].get("data-attribute") == "sex")
    rows = {r["attrs"]["data-group"]: r for r in table["rows"] if "data-group" in r["attrs"]}
    for sex, n in counts.items():
        cells = [c["text"].strip() for c in rows[str(sex)]["cells"]]
        assert cells[1] == str(n)
        assert cells[2] == f"{100 * n / total:.1f}%"
        prev = 100 * frame.loc[frame["sex"] == sex, "label:AFIB"].mean()
        assert f"{prev:.1f}%" in cells  # AFIB prevalence column
    assert f"{total} ECGs" in ptbxl["html"]


def test_findings_quote_disparities_csv(ptbxl: dict[str, Any]) -> None:
    view = build_view(ptbxl["result"], figures=False)
    assert 3 <= len(view["findings"]) <= 6
    disp = ptbxl["disparities"]
    pattern = re.compile(r"^(\S+) \((\w+)\) for (.+?) is (\d\.\d{3}) (lower|higher) than for "
                         r"(.+?) \(95% CI (-?\d\.\d{3}) to (-?\d\.\d{3})")
    matched = 0
    for sentence in view["findings"]:
        m = pattern.match(sentence)
        if not m:
            continue
        task, size, word = m.group(2), m.group(4), m.group(5)
        rows = disp[(disp.task == task) & disp.difference.notna()]
        hits = [r for r in rows.itertuples() if fmt(abs(r.difference)) == size
                and (r.difference < 0) == (word == "lower")
                and sorted([fmt(abs(r.difference_ci_low)), fmt(abs(r.difference_ci_high))])
                == sorted([m.group(7).lstrip("-"), m.group(8).lstrip("-")])]
        assert hits, sentence
        matched += 1
    assert matched >= 1


def test_no_patient_ids_or_user_paths(ptbxl: dict[str, Any]) -> None:
    html = ptbxl["html"]
    for fragment in (str(ROOT), str(ptbxl["dir"]), "/work/", "/tmp/", "/home/"):
        assert fragment not in html
    assert "predictions.csv" in html  # the input is named by its base name only
    meta = pd.read_csv(PTBXL / "metadata.csv")
    ids = {str(int(v)) for col in ("patient_id", "ecg_id") if col in meta
           for v in meta[col].dropna() if v >= 10000}
    assert len(ids) > 100
    tokens = set(re.findall(r"\b\d+\b", " ".join(parse(html).text)))
    seed = str(ptbxl["result"].manifest["seed"])
    assert tokens & ids <= {seed}


def test_report_size_and_determinism(ptbxl: dict[str, Any]) -> None:
    size = len(ptbxl["html"].encode("utf-8"))
    assert size < 2 * 1024 * 1024, size
    again = render_html(ecgaudit.AuditResult.load(ptbxl["dir"] / "results.json"))
    assert again == ptbxl["html"]


def test_self_contained_no_scripts_or_external_refs(ptbxl: dict[str, Any]) -> None:
    html = ptbxl["html"]
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)
    assert "@import" not in html
    assert html.count("url(") == html.count("url(#")  # only references inside the page
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    # forest plot, heat map and reliability curves per task (6 tasks)
    assert html.count("<svg") == 18
    assert html.count("<title id=") == 18 and html.count("<desc id=") == 18


def test_synthetic_sections_gate_and_representativeness(synth: dict[str, Any]) -> None:
    result = synth["result"]
    policy = parse_policy({"rules": [
        {"metric": "auroc", "max_abs_difference": 0.05, "judge": "point"},
        {"metric": "auroc", "min": 0.5, "judge": "point"},
    ]}, result)
    gate = evaluate(result, policy).to_dict()
    assert gate["status"] == "fail"
    html = render_html(result, gate=gate)
    doc = parse(html)
    assert "policy" in doc.ids
    assert 'data-gate-status="fail"' in html
    failing = {(r["task"], r["attribute"], r["group"]) for r in gate["rules"]
               if r["outcome"] == "fail" and r["metric"] == "auroc" and r["group"]}
    assert ("hf", "race", "Black") in failing
    highlighted = set()
    for table in doc.tables:
        if table["attrs"].get("class") != "disparity-table":
            continue
        for row in table["rows"]:
            for c in row["cells"]:
                if "fail" in c["attrs"].get("class", "").split() and c["attrs"].get(
                        "data-metric") == "auroc":
                    highlighted.add((table["attrs"]["data-task"], row["attrs"]["data-attribute"],
                                     row["attrs"]["data-group"]))
                    assert "fails policy" in c["text"]
    assert highlighted == failing
    # representativeness against the configured target population (50% / 50%)
    frame = synth["frame"]
    share = 100 * (frame["sex"] == "female").mean()
    table = next(t for t in doc.tables if t["attrs"].get("data-attribute") == "sex"
                 and t["attrs"].get("class") == "cohort-table")
    row = next(r for r in table["rows"] if r["attrs"].get("data-group") == "female")
    texts = [c["text"].strip() for c in row["cells"]]
    assert "50.0%" in texts and f"{share - 50:+.1f} pts" in texts
    # race is audited here, so the "race not audited" limitation must not appear
    assert "Race and ethnicity were not audited" not in html
    assert "Race and ethnicity were not audited" in render_html(
        ecgaudit.AuditResult.load(ROOT / "examples" / "ptbxl") if False else _ptbxl_like(result))


def _ptbxl_like(result: ecgaudit.AuditResult) -> ecgaudit.AuditResult:
    """The same result restricted to sex and age (no race attribute)."""
    keep = ~result.metrics["attribute"].str.contains("race")
    keep_d = ~result.disparities["attribute"].str.contains("race")
    manifest = dict(result.manifest)
    cfg = dict(manifest["config"])
    cfg["attributes"] = {k: v for k, v in cfg["attributes"].items() if k != "race"}
    manifest["config"] = cfg
    return ecgaudit.AuditResult(result.metrics[keep], result.disparities[keep_d], manifest,
                                {"cohort": [c for c in result.extras.get("cohort", [])
                                            if "race" not in c["attribute"]]})


def test_ptbxl_policy_failures_are_highlighted(ptbxl: dict[str, Any]) -> None:
    from ecgaudit.policy import load_policy

    result = ptbxl["result"]
    gate = evaluate(result, load_policy(PTBXL / "policy.yaml", result)).to_dict()
    failing = {(r["task"], r["attribute"], r["group"], r["metric"]) for r in gate["rules"]
               if r["outcome"] == "fail" and r["metric"] and r["group"] is not None}
    assert failing, "the example policy is expected to fail somewhere"
    # tables only (figures off, for speed): the highlight under test is in the tables
    html = render_view(build_view(result, gate=gate, figures=False))
    doc = parse(html)
    marked = set()
    for table in doc.tables:
        task = table["attrs"].get("data-task")
        for row in table["rows"]:
            ra = row["attrs"]
            if "fail" in ra.get("class", "").split() and "data-metric" in ra:
                marked.add((task, ra["data-attribute"], ra["data-group"], ra["data-metric"]))
            for c in row["cells"]:
                if "fail" in c["attrs"].get("class", "").split() and "data-metric" in c["attrs"]:
                    assert "fails policy" in c["text"]
                    marked.add((task, ra.get("data-attribute"), ra.get("data-group"),
                                c["attrs"]["data-metric"]))
    assert failing <= marked
    assert f'data-gate-status="{gate["status"]}"' in html
    summary = build_view(result, gate=gate, figures=False)["findings"][0]
    assert summary.startswith(f"Fairness policy result: {gate['status'].upper()}")
    assert f"{gate['summary']['fail']} fail" in summary


def _curves(frame: pd.DataFrame, task: str, attrs: tuple[str, ...]) -> dict[str, Any]:
    """Equal-mass reliability bins per group, computed here from the cohort rows."""
    out: dict[str, Any] = {}
    for attr in attrs:
        out[attr] = {}
        for group, sub in frame.groupby(attr):
            q = pd.qcut(sub[f"p_{task}"], 5, labels=False, duplicates="drop")
            bins = [{"p_mean": float(b[f"p_{task}"].mean()), "y_mean": float(b[f"y_{task}"].mean()),
                     "y_low": None, "y_high": None, "n": len(b)} for _, b in sub.groupby(q)]
            out[attr][str(group)] = {"bins": bins, "smooth": {"p": [0.1, 0.5, 0.9],
                                                              "y": [0.1, 0.5, 0.9]}}
    return out


def test_reliability_curves_rendered_when_present(synth: dict[str, Any]) -> None:
    audited = synth["result"]
    assert audited.extras.get("curves")  # the audit stores curves; drop them for this test
    result = ecgaudit.AuditResult(audited.metrics, audited.disparities, audited.manifest,
                                  {k: v for k, v in audited.extras.items() if k != "curves"})
    html = render_html(result)
    assert "-reliability" not in html and "No reliability curves are stored" in html
    curves = {t: _curves(synth["frame"], t, ("sex", "race")) for t in ("hf", "af")}
    with_curves = ecgaudit.AuditResult(result.metrics, result.disparities, result.manifest,
                                       {**result.extras, "curves": curves})
    html = render_html(with_curves)
    figs = re.findall(r'<svg role="img" aria-labelledby="([^" ]+)-title[^>]*>(.*?)</svg>',
                      html, re.S)
    rel = {fid: body for fid, body in figs if fid.endswith("-reliability")}
    assert len(rel) == 2
    for body in rel.values():
        desc = re.search(r"<desc[^>]*>(.*?)</desc>", body, re.S).group(1)
        for group in ("sex female", "sex male", "race White", "race Black"):
            assert f"{group}: 5 bins" in desc
