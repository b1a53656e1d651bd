"""Real-browser check of the committee-views sections (age curves, controlled disparities,
standards exports): drawn, labelled, offline, no errors. One test (Chromium via Playwright)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import ecgaudit
from ecgaudit.reports import write_report
from tests.test_browser import EVIL, Page, browser  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def _cohort(n: int = 2500, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    site = rng.choice(["A", "B"], n)
    sex = np.where(rng.random(n) < np.where(site == "B", 0.7, 0.3), "female", "male")
    age = rng.uniform(25, 90, n).round()
    y = (rng.random(n) < 0.3).astype(int)
    z = -0.5 - 0.6 * (site == "B") + (2.6 - 0.02 * (age - 25)) * (y - 0.5) + rng.normal(size=n)
    return pd.DataFrame({"id": np.arange(n), "y": y, "p": 1 / (1 + np.exp(-z)), "sex": sex,
                         "site": site, "age": age})


def test_view_sections_render_offline_with_labelled_figures(browser: Any,  # noqa: F811
                                                            tmp_path: Path) -> None:
    config = {
        "tasks": [{"name": "hf", "label": "y", "score": "p"}],
        "attributes": {"sex": {"reference": "male"}, "site": {}, "age": {"kind": "age"}},
        "intersections": "none", "bootstrap": 40, "seed": 1,
        "threshold": {"rule": "fixed", "value": 0.35},
        "continuous_axes": {"age": {"by": ["sex"], "grid_points": 15}}, "control": ["site"],
        "context": {"intended_use": "triage", "equity_context": EVIL},
    }
    path = write_report(ecgaudit.audit(_cohort(), config), tmp_path / "views.html")
    p = Page(browser, path, viewport={"width": 1280, "height": 900})
    try:
        figs = p.page.evaluate(
            "() => Array.from(document.querySelectorAll('#views-curves figure svg')).map(s => {"
            "const r = s.getBoundingClientRect(); return [r.width, r.height,"
            " s.getAttribute('role'), s.querySelector('desc').textContent]; })")
        assert len(figs) == 1  # one task x one `by` attribute
        width, height, role, desc = figs[0]
        assert width > 400 and height > 100 and role == "img"
        assert "pointwise 95% bootstrap bands" in desc and "female" in desc
        bands = p.page.evaluate(  # shaded bands are drawn (filled paths inside the figure)
            "() => document.querySelectorAll('#views-curves svg [style*=\"fill-opacity\"]')"
            ".length")
        assert bands >= 3
        rows = p.page.evaluate(
            "() => Array.from(document.querySelectorAll('.controlled-table tbody tr')).map("
            "r => [r.dataset.group, r.dataset.metric, r.cells.length])")
        assert ["female", "sensitivity", 8] in rows and ["female", "auroc", 8] in rows
        hti1 = p.page.evaluate(
            "() => Array.from(document.querySelectorAll('.hti1-table tbody tr')).map("
            "r => r.dataset.source)")
        assert len(hti1) == 28 and hti1.count("context") == 1 and "audit" in hti1
        assert p.page.evaluate("() => document.querySelector('#views-standards')"
                               ".innerText.includes('HTI-5')")
        assert p.page.evaluate("() => [window.pwned === undefined, document.scripts.length]"
                               ) == [True, 0]
    finally:
        p.close()
    assert p.console == [] and p.errors == [] and p.failed == [] and p.outgoing == []
