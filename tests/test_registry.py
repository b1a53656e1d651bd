"""The metric registry: declarations, the tables derived from them, the generated docs.

Also the worked example of ``docs/architecture.md`` ("Adding a metric"): a toy metric
registered in a test-local registry goes through the same steps as a real one.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ecgaudit import headline, plotting, schema
from ecgaudit.metrics import _bootstrap, _continuous, _survtable, confusion_counts
from ecgaudit.metrics import get_metric as metrics_get_metric
from ecgaudit.policy import _schema as policy_schema
from ecgaudit.registry import (
    REGISTRY,
    MetricRegistry,
    MetricSpec,
    directional,
    get_metric,
    labels,
    metric_names,
)
from ecgaudit.registry._docs import BEGIN, END, main, metrics_markdown, update_page
from ecgaudit.reports import _continuous as report_continuous
from ecgaudit.reports import _format
from ecgaudit.reports import _survival as report_survival

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "metrics.md"


def test_docs_metrics_page_is_generated_from_the_registry() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert update_page(PAGE, REGISTRY) == text, (
        "docs/metrics.md is out of date: run python -m ecgaudit.registry.docs docs/metrics.md")
    for spec in REGISTRY:
        assert f"| `{spec.name}` | {spec.label} |" in text
    assert main(["--check", str(PAGE)]) == 0


def test_docs_check_reports_a_stale_page(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "m.md"
    page.write_text(f"# x\n{BEGIN}\n| old |\n{END}\n", encoding="utf-8")
    assert main(["--check", str(page)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main([str(page)]) == 0 and main(["--check", str(page)]) == 0
    bad = tmp_path / "bad.md"
    bad.write_text("no markers", encoding="utf-8")
    with pytest.raises(ValueError, match="markers"):
        update_page(bad, REGISTRY)


def test_schema_lists_are_the_registry_in_report_order() -> None:
    assert schema.METRICS == metric_names("binary") == tuple(
        s.name for s in REGISTRY.select("binary"))
    assert tuple(
        s.name for s in REGISTRY.select("binary") if s.family == "rate") == schema.RATE_METRICS
    assert metric_names("continuous") == schema.CONTINUOUS_METRICS
    assert metric_names("survival") == schema.SURVIVAL_METRICS
    assert metric_names("binary", table="ranking") == schema.RANKING_METRICS
    assert set(schema.RULE_METRICS) == {s.name for s in REGISTRY.select() if s.rule}
    assert {s.name for s in REGISTRY.select() if s.bounded} == schema.BOUNDED_METRICS


def test_derived_tables_follow_the_declarations() -> None:
    binary = REGISTRY.select("binary")
    assert {s.name: s.label for s in binary} == _format.METRIC_LABELS
    assert {s.name: s.definition for s in binary} == _format.METRIC_DEFINITIONS
    assert plotting.metric_name("cal_slope") == get_metric("cal_slope").short_label
    assert report_survival.LABELS["harrell_c"] == get_metric("harrell_c", "survival").short_label
    assert labels("continuous", short=True) == report_continuous.LABELS
    assert {s.name: s.needs_text for s in binary} == _bootstrap.NEEDS
    assert headline.CALIBRATION_FINDING_METRICS["oe_ratio"] == 1.0
    assert headline.CALIBRATION_FINDING_METRICS["ece"] is None
    for name in policy_schema.HIGHER_IS_BETTER:
        assert any(s.direction == "higher" for s in REGISTRY.select() if s.name == name)
    assert not policy_schema.HIGHER_IS_BETTER & policy_schema.LOWER_IS_BETTER
    assert directional("higher", ("binary",)) == _format.HIGHER_IS_BETTER
    surv = {m.name: m for m in _survtable.SURVIVAL_METRICS}
    assert surv["uno_c"].horizon == "largest" and surv["oe_ratio"].higher_is_better is None
    cont = {s.name: s for s in _continuous.CONTINUOUS_METRIC_SPECS}
    assert cont["slope"].direction == "target:1" and cont["within_tolerance"].needs == (
        "tolerance",)


def test_names_collide_only_across_outcome_types() -> None:
    assert get_metric("brier").definition != get_metric("brier", "survival").definition
    assert metrics_get_metric is get_metric
    with pytest.raises(KeyError, match=r"no continuous metric 'auroc'.*bias"):
        get_metric("auroc", "continuous")
    with pytest.raises(ValueError, match="already registered"):
        MetricRegistry([get_metric("auroc"), get_metric("auroc")])


def test_a_declaration_is_checked_when_it_is_made() -> None:
    base = get_metric("auroc")
    kw = {f: getattr(base, f) for f in base.__dataclass_fields__}
    with pytest.raises(ValueError, match="target value"):
        MetricSpec(**{**kw, "target": 0.5})
    with pytest.raises(ValueError, match="outcome"):
        MetricSpec(**{**kw, "outcome": "ordinal"})


# ----------------------------------------------------- worked example (docs/architecture.md)

def _balanced_accuracy_reference(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    from sklearn.metrics import balanced_accuracy_score

    y = np.asarray(y)
    if not (np.any(y == 1) and np.any(y == 0)):
        return math.nan
    return float(balanced_accuracy_score(y, np.asarray(p) >= threshold))


BALANCED_ACCURACY = MetricSpec(
    "balanced_accuracy", "binary", "Balanced accuracy", "Bal. acc.",
    "mean of sensitivity and specificity at the operating threshold", "higher",
    needs=("positives", "negatives", "threshold"), needs_text="positives and negatives",
    intervals=("bootstrap-percentile", "bootstrap-bca"), disparity_test="bootstrap",
    family="rate", bounded=True, reference=_balanced_accuracy_reference,
    reference_name="sklearn.metrics.balanced_accuracy_score")


def _balanced_accuracy_engine(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """Step 2 of the recipe: the engine's formula, from the confusion counts."""
    c = confusion_counts(y, p, threshold)
    if c.tp + c.fn == 0 or c.tn + c.fp == 0:
        return math.nan
    return 0.5 * (c.tp / (c.tp + c.fn) + c.tn / (c.tn + c.fp))


def test_worked_example_adding_a_metric() -> None:
    local = MetricRegistry(REGISTRY)  # a copy: the real registry is not touched
    spec = local.register(BALANCED_ACCURACY)
    assert spec.name in local.names("binary") and spec.name not in metric_names("binary")
    assert local.get("balanced_accuracy").higher_is_better is True
    rng = np.random.default_rng(0)
    for y, p in [((rng.random(50) < 0.3).astype(int), rng.random(50)),
                 (np.array([1, 1, 0]), np.array([0.9, 0.2, 0.4])),
                 (np.ones(5, int), rng.random(5))]:
        got, want = _balanced_accuracy_engine(y, p, 0.5), spec.reference(y, p, 0.5)
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)
    table = metrics_markdown(local)
    assert "| `balanced_accuracy` | Balanced accuracy | higher is better |" in table
    assert "balanced_accuracy" not in metrics_markdown(REGISTRY)


def _first_column(page: str) -> set[str]:
    """Metric names in the first column of a page's Markdown tables (`a`, `b` cells)."""
    names: set[str] = set()
    for line in (ROOT / "docs" / page).read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            cell = line.split("|")[1]
            names |= {part.strip().strip("`") for part in cell.split(",")}
    return names


@pytest.mark.parametrize(("page", "outcome"), [("continuous.md", "continuous"),
                                               ("survival.md", "survival")])
def test_outcome_pages_list_every_registered_metric(page: str, outcome: str) -> None:
    assert set(metric_names(outcome)) <= _first_column(page)


def test_gating_page_lists_the_binary_rule_metrics() -> None:
    text = (ROOT / "docs" / "gating.md").read_text(encoding="utf-8")
    assert f"binary (`{', '.join(metric_names('binary', rule=True))}`)" in text


def test_the_registry_is_plain_data() -> None:
    """Importing it (and the schema, and so the CLI's --help) loads no numerical library."""
    import subprocess
    import sys

    code = ("import sys, ecgaudit.schema, ecgaudit.registry; "
            "print([m for m in ('numpy', 'scipy', 'sklearn', 'pandas') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert out.stdout.strip() == "[]"
