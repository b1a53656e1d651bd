"""The survival section of the HTML report."""

from __future__ import annotations

import numpy as np
import pandas as pd

import ecgaudit
from ecgaudit.reports import render_html
from ecgaudit.reports._model import build_view


def _result(group_b="<b>B</b>"):
    rng = np.random.default_rng(0)
    n = 400
    x = rng.normal(size=n)
    te = rng.weibull(1.2, n) * 900 * np.exp(-0.7 * x)
    tc = rng.uniform(200, 2000, n)
    df = pd.DataFrame({"t": np.minimum(te, tc), "e": (te <= tc).astype(int),
                       "p": 1 / (1 + np.exp(-(x - 0.5))),
                       "g": np.where(np.arange(n) % 2 == 0, "A", group_b)})
    return ecgaudit.audit(df, {"tasks": [{"name": "death", "kind": "survival", "time": "t",
                                          "event": "e", "score": "p",
                                          "horizons": [365, 900]}],
                               "attributes": {"g": {"reference": "A"}}, "bootstrap": 20})


def test_survival_section_rendered_and_escaped():
    html = render_html(_result())
    assert 'id="survival"' in html
    assert "Kaplan-Meier curves by g" in html and "Calibration at horizon 365" in html
    assert "<b>B</b>" not in html and "&lt;b&gt;B&lt;/b&gt;" in html
    view = build_view(_result(), figures=False)["survival"]["tasks"][0]
    labels = [c["label"] for c in view["columns"]]
    assert "C-index" in labels and "td-AUROC @ 365" in labels and "O/E @ 900" in labels
    overall = view["rows"][0]
    assert overall["group"] == "All patients" and overall["cells"][0]["kind"] == "value"


def test_binary_report_has_no_survival_section():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": np.tile([0, 1], 60), "p": rng.uniform(size=120),
                       "sex": np.tile(["a", "b"], 60)})
    r = ecgaudit.audit(df, {"tasks": [{"name": "x", "label": "y", "score": "p"}],
                            "attributes": {"sex": {}}})
    assert build_view(r, figures=False)["survival"] is None
    assert 'id="survival"' not in render_html(r)
