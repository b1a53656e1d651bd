"""Report of continuous tasks: findings quote the tables, figures, derived tasks, privacy."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from ecgaudit import audit
from ecgaudit.datasets import make_synthetic_potassium
from ecgaudit.reports import build_view, render_html

CONFIG = {
    "tasks": [{"name": "potassium", "kind": "continuous", "label": "k", "score": "k_hat",
               "tolerance": 0.5, "cutpoints": [5.5]}],
    "attributes": {"race": {"reference": "White"}, "sex": {}},
    "intersections": "none", "patient_column": "patient_id",
}


@pytest.fixture(scope="module")
def result():
    frame = make_synthetic_potassium(2500, seed=5)
    frame.loc[frame.index[:4], "race"] = "Tiny"  # a small cell: suppressed everywhere
    return audit(frame, CONFIG)


@pytest.fixture(scope="module")
def html(result) -> str:
    return render_html(result)


def test_findings_quote_the_metric_table(result) -> None:
    view = build_view(result)
    cont = view["continuous"]
    assert [c["name"] for c in cont] == ["potassium"]
    m = result.metrics.set_index(["task", "attribute", "group", "metric"])
    black = m.loc[("potassium", "race", "Black", "bias")]
    want = (f"Predictions run {black.estimate:.2f} [{black.ci_low:.2f}, {black.ci_high:.2f}] "
            "high for race Black")
    assert any(f.startswith(want) for f in cont[0]["findings"]), cont[0]["findings"]
    assert not any(re.search(r"for race White\b", f) for f in cont[0]["findings"])


def test_binary_sections_hold_only_binary_tasks(result) -> None:
    view = build_view(result)
    assert [t["name"] for t in view["tasks"]] == ["potassium>=5.5"]
    assert view["continuous"][0]["derived"] == [
        {"name": "potassium>=5.5", "anchor": view["tasks"][0]["anchor"]}]


def test_html_has_figures_and_tables(html: str) -> None:
    section = html[html.index('id="continuous"'):]
    assert section.count("<svg") >= 2 + 2 * 3  # forest x2, BA + calibration per attribute
    assert "Bland-Altman by race: potassium" in section
    assert 'class="continuous-table"' in section


def test_small_cell_shows_no_numbers(html: str, result) -> None:
    section = html[html.index('id="continuous"'):]
    rows = re.findall(r'<tr data-attribute="race" data-group="Tiny">', section)
    assert rows == []  # listed only as a suppressed group
    assert "Tiny" in section and "suppressed (privacy)" in section
    assert result.extras["continuous"]["potassium"]["groups"]
    assert all(g["group"] != "Tiny" for g in result.extras["continuous"]["potassium"]["groups"])


def test_report_is_deterministic(result, html: str) -> None:
    assert render_html(result) == html
    assert isinstance(result.metrics, pd.DataFrame)
