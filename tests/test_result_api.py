"""The notebook API of AuditResult: repr, HTML summary, wide views, plots, save(report=True)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
from matplotlib.figure import Figure

import ecgaudit
from ecgaudit import plotting
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.errors import InputError

EVIL = "<b>x</b>&"


@pytest.fixture(scope="module")
def result() -> ecgaudit.AuditResult:
    frame = make_synthetic_cohort(1500, seed=11, tasks=("hf", "lowef")).frame
    frame.loc[frame["race"] == "Other", "race"] = EVIL
    return ecgaudit.audit(frame, {
        "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"},
                  {"name": "lowef", "label": "y_lowef", "score": "p_lowef"}],
        "attributes": {"race": {"reference": "White"}, "sex": {}},
        "threshold": {"rule": "fixed", "value": 0.3},
    })


def test_repr_is_short_and_names_every_task(result: ecgaudit.AuditResult) -> None:
    text = repr(result)
    assert len(text.splitlines()) <= 6
    assert "hf:" in text and "lowef:" in text
    overall = result.metrics.query("task == 'hf' and attribute == 'overall' and metric == 'auroc'")
    assert f"AUROC {overall.estimate.iloc[0]:.3f}" in text


def test_repr_html_escapes_and_summarises(result: ecgaudit.AuditResult) -> None:
    page = result._repr_html_()
    assert page.startswith('<div class="ecgaudit-result">') and "<table>" in page
    assert page.count("<tr>") == 1 + 2  # header + one row per task
    assert "<b>" not in page
    lowef = result.metrics.query(
        "task == 'lowef' and attribute == 'overall' and metric == 'auroc'").iloc[0]
    assert f"{lowef.ci_low:.3f}" in page


def test_by_group_single_task_matches_tidy_rows(result: ecgaudit.AuditResult) -> None:
    wide = result.by_group("sensitivity", task="hf")
    assert list(wide.columns) == ["estimate", "ci_low", "ci_high", "n", "n_pos", "status"]
    tidy = result.metrics.query("task == 'hf' and metric == 'sensitivity'")
    assert len(wide) == len(tidy)
    assert wide.index[0] == ("overall", "all")
    for r in tidy.itertuples():
        row = wide.loc[(r.attribute, r.group)]
        for col in ("estimate", "ci_low", "ci_high"):
            a, b = row[col], getattr(r, col)
            assert (pd.isna(a) and pd.isna(b)) or a == b
        assert row["status"] == r.status


def test_by_group_all_tasks_has_a_block_per_task(result: ecgaudit.AuditResult) -> None:
    wide = result.by_group("auroc", intersections=False)
    assert list(dict.fromkeys(wide.columns.get_level_values(0))) == ["hf", "lowef"]
    assert not any(" & " in a for a, _ in wide.index)
    tidy = result.metrics.query("task == 'lowef' and metric == 'auroc' and "
                                "attribute == 'race' and group == 'Black'")
    assert wide.loc[("race", "Black"), ("lowef", "estimate")] == tidy.estimate.iloc[0]


def test_disparity_table_difference_and_ratio(result: ecgaudit.AuditResult) -> None:
    d = result.disparities.query("task == 'hf' and metric == 'sensitivity'")
    diff = result.disparity_table("sensitivity", task="hf")
    ratio = result.disparity_table("sensitivity", kind="ratio", task="hf")
    assert len(diff) == len(d) == len(ratio)
    for r in d.itertuples():
        assert diff.loc[(r.attribute, r.group), "reference"] == r.reference
        for got, want in ((diff.loc[(r.attribute, r.group), "difference"], r.difference),
                          (ratio.loc[(r.attribute, r.group), "ci_high"], r.ratio_ci_high),
                          (diff.loc[(r.attribute, r.group), "p_holm"], r.p_holm)):
            assert (math.isnan(got) and math.isnan(want)) or got == want
    both = result.disparity_table("auroc")
    assert set(both.columns.get_level_values(0)) == {"hf", "lowef"}


@pytest.mark.parametrize(("call", "message"), [
    (lambda r: r.by_group("aucroc"), "Did you mean 'auroc'"),
    (lambda r: r.by_group("auroc", task="nope"), "unknown task 'nope'"),
    (lambda r: r.disparity_table("auroc", kind="odds"), "kind must be"),
    (lambda r: plotting.plot_forest(r), "choose one with task="),
])
def test_bad_arguments_are_clear_errors(result: ecgaudit.AuditResult, call, message) -> None:
    with pytest.raises(InputError, match=message):
        call(result)


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts] + [t.get_text() for t in ax.get_yticklabels()]


def test_forest_plot_draws_each_group_and_notes_small_ones(result: ecgaudit.AuditResult) -> None:
    ax = Figure().add_subplot()
    plotting.plot_forest(result, "hf", ax=ax)
    tidy = result.metrics.query("task == 'hf' and metric == 'auroc' and "
                                "not attribute.str.contains(' & ')", engine="python")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(tidy) and labels[0] == "Overall"
    # one marker per estimated group, at its estimate
    estimated = tidy[tidy.status.isin(["ok", "unstable"])]
    xs = sorted(float(line.get_xdata()[0]) for line in ax.lines if len(line.get_xdata()) == 1)
    assert np.allclose(xs, sorted(estimated.estimate))
    notes = [t.get_text() for t in ax.texts]
    assert len(notes) == len(tidy) - len(estimated)
    assert all(n.startswith(("suppressed", "insufficient")) for n in notes)


def test_heatmap_values_match_disparities(result: ecgaudit.AuditResult) -> None:
    ax = Figure().add_subplot()
    plotting.plot_heatmap(result, "hf", kind="difference", metrics=("auroc", "sensitivity"), ax=ax)
    d = result.disparities.query("task == 'hf' and metric in ['auroc', 'sensitivity'] and "
                                 "not attribute.str.contains(' & ')", engine="python")
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == len(d)
    shown = {float(c.replace("\u2212", "-")) for c in cells if c != "n/a"}
    assert shown == {round(v, 2) + 0.0 for v in d.difference.dropna()}


def test_reliability_plot_uses_the_stored_curves(result: ecgaudit.AuditResult) -> None:
    ax = Figure().add_subplot()
    plotting.plot_reliability(result, "hf", "sex", ax=ax)
    curves = result.extras["curves"]["hf"]["sex"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(curves)


def test_report_figures_are_drawn_by_the_plotting_functions(monkeypatch) -> None:
    from ecgaudit.reports import _figures

    calls = []
    real = plotting.draw_forest
    monkeypatch.setattr(_figures, "draw_forest",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    svg = _figures.forest_plot([{"label": "Overall", "attribute": "overall", "estimate": 0.8,
                                 "ci_low": 0.7, "ci_high": 0.9, "status": "ok", "note": ""}],
                               reference=0.8, fig_id="f", title="t")
    assert calls == [1] and svg.startswith("<svg") and "min-width:" in svg


def test_save_with_report(result: ecgaudit.AuditResult, tmp_path: Path) -> None:
    paths = result.save(tmp_path / "out", report=True)
    assert set(paths) == {"metrics", "disparities", "results", "report"}
    html = paths["report"].read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and 'id="disparities"' in html
    assert "report" not in result.save(tmp_path / "plain")
    assert not (tmp_path / "plain" / "report.html").exists()
