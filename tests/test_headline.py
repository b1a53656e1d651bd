"""The headline rules (worst group, findings, verdict) on planted cohorts (issue 12, item 5).

One rule in :mod:`ecgaudit.headline`, used by the CLI summary, the report and
``AuditResult.worst_group``: the tests check each surface against it and the rule against
what was planted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import ecgaudit
from ecgaudit.cli._summary import print_summary, print_verdicts
from ecgaudit.headline import (
    CALIBRATION_FINDING_METRICS,
    select_findings,
    task_verdict,
    worst_group,
)
from ecgaudit.reports import render_html
from ecgaudit.reports._findings import count_sentence
from ecgaudit.reports._model import build_view

CFG: dict[str, Any] = {
    "id_column": "ecg_id", "tasks": [{"name": "hf", "label": "y", "score": "p"}],
    "attributes": {"race": {"reference": "A"}, "sex": {}},
    "threshold": {"rule": "fixed", "value": 0.5}, "min_events": 10,
}


def _cohort(seed: int, sizes: dict[str, int], separation: dict[str, float],
            *, small_cell_sep: float | None = None) -> pd.DataFrame:
    """Binormal scores per race; ``small_cell_sep`` degrades the C & F intersection only."""
    rng = np.random.default_rng(seed)
    race = np.repeat(list(sizes), list(sizes.values()))
    sex = rng.choice(["F", "M"], race.size)
    y = (rng.random(race.size) < 0.3).astype(int)
    d = np.array([separation.get(r, 2.6) for r in race])
    if small_cell_sep is not None:
        d = np.where((race == "C") & (sex == "F"), small_cell_sep, d)
    z = -0.8 + d / 2 * (2 * y - 1) + rng.normal(size=y.size)
    return pd.DataFrame({"ecg_id": np.arange(y.size), "race": race, "sex": sex, "y": y,
                         "p": 1 / (1 + np.exp(-z))})


@pytest.fixture(scope="module")
def anti() -> ecgaudit.AuditResult:
    """A 40-patient group Z whose scores are reversed (AUROC far below 0.5), 6 positives."""
    frame = _cohort(11, {"A": 900, "B": 600, "Z": 40}, {})
    z = frame.index[frame.race == "Z"]
    frame.loc[z, "y"] = 0
    frame.loc[z[:6], "y"] = 1
    rng = np.random.default_rng(2)
    frame.loc[z, "p"] = np.where(frame.loc[z, "y"] == 1, 0.2, 0.45) + rng.uniform(0, 0.5, 40)
    return ecgaudit.audit(frame, CFG)


def test_anti_informative_small_group_is_the_flagged_worst_group(anti: Any) -> None:
    w = anti.worst_group("hf")
    assert w.attribute.startswith("race") and w.group.startswith("Z")  # Z or Z & sex
    assert w.estimate < 0.5 and w.worse_than_chance
    assert w.unstable and "fewer than 10 positive" in w.reason  # flagged, not hidden
    assert anti.worst_group()["hf"] == w
    ok_only = anti.metrics[(anti.metrics.metric == "auroc") & (anti.metrics.status == "ok")
                           & (anti.metrics.attribute != "overall")]
    assert w.estimate < ok_only.estimate.min()  # the old rule (ok groups only) hid it


def test_cli_and_report_name_the_same_worst_group_and_the_chance_failure(anti: Any) -> None:
    console = Console(record=True, width=200)
    print_summary(anti, console)
    text = console.export_text()
    w = anti.worst_group("hf")
    assert f"{w.attribute}={w.group} *" in text
    assert "AUROC below chance in race=Z:" in text and "unstable" in text
    view = build_view(anti, figures=False)
    (card,) = view["headline"]
    assert card["worst_group"].startswith("race Z") and card["worst_unstable"]
    assert card["worst_auroc"] == f"{w.estimate:.3f}"
    assert "race Z" in [c["group"] for c in card["below_chance"]]
    assert any("race Z" in f and "worse than chance" in f for f in view["findings"])
    html = render_html(anti)
    assert "Worse than chance:</strong> AUROC" in html and "race Z" in html


@pytest.fixture(scope="module")
def planted() -> ecgaudit.AuditResult:
    """Main effect: race B (700 ECGs) AUROC ~0.80 vs 0.93; small cell C & F degraded more."""
    frame = _cohort(5, {"A": 1200, "B": 700, "C": 60}, {"B": 1.2}, small_cell_sep=1.4)
    return ecgaudit.audit(frame, CFG)


def test_planted_main_effect_beats_a_small_intersection(planted: Any) -> None:
    data = planted.to_dict()
    confirmed, exploratory = select_findings(data["disparities"], data["metrics"])
    first = confirmed[0].record
    assert (first["attribute"], first["group"]) == ("race", "B")
    # a harm: lower AUROC, or (bootstrap on by default) worse calibration of the same group
    assert confirmed[0].kind in ("harm", "calibration") and confirmed[0].main_effect
    assert any(f.kind == "harm" and f.record["metric"] == "auroc"
               and f.record["group"] == "B" for f in confirmed)
    d = planted.disparities.set_index(["attribute", "group", "metric"])
    small, main = d.loc[("race & sex", "C & F", "auroc")], d.loc[("race", "B", "auroc")]
    # the small cell has the larger raw gap and an unadjusted CI excluding 0 ...
    assert abs(small.difference) > abs(main.difference) and small.difference_ci_high < 0
    # ... but does not survive Holm: never a finding, at most exploratory
    assert small.p_holm >= 0.05
    assert all(f.record["group"] != "C & F" for f in confirmed)
    assert all(float(f.record["p_holm"]) < 0.05 for f in confirmed)
    assert all(float(f.record["p_holm"]) >= 0.05 and float(f.record["p_bh"]) < 0.05
               for f in exploratory)
    # harms first, then main effects before intersections
    keys = [(f.kind == "better", not f.main_effect) for f in confirmed]
    assert keys == sorted(keys)
    view = build_view(planted, figures=False)
    sentences = [s for s in view["findings"] if " than for " in s]
    assert sentences[0].startswith("AUROC for race B is") or "race B" in sentences[0]
    assert not any("race C, sex F" in s for s in sentences)
    assert "Holm-adjusted p" in sentences[0]


def test_better_than_reference_is_labelled(planted: Any) -> None:
    data = planted.to_dict()
    confirmed, _ = select_findings(data["disparities"], data["metrics"])
    view = build_view(planted, figures=False)
    better = [f for f in confirmed if f.kind == "better"]
    est = planted.metrics.set_index(["task", "attribute", "group", "metric"]).estimate
    for f in better:
        r = f.record
        ideal = CALIBRATION_FINDING_METRICS.get(r["metric"], "rate")
        if ideal == "rate":
            assert r["difference"] * (1 if r["metric"] in ("fnr", "fpr") else -1) < 0
            continue
        g = est[(r["task"], r["attribute"], r["group"], r["metric"])]
        ref = g - r["difference"]
        if ideal is None:  # brier, ece: lower is better
            assert g < ref
        else:  # closer to the ideal value (slope 1, intercept 0, O/E 1)
            assert abs(g - ideal) < abs(ref - ideal)
    for s in view["findings"] + view["findings_exploratory"]:
        if "better than the reference" in s:
            assert "higher" in s or "lower" in s


def test_verdict_names_the_gap_and_the_groups_too_small_to_judge(planted: Any) -> None:
    data = planted.to_dict()
    v = task_verdict("hf", data["metrics"], data["disparities"], data["extras"]["power"])
    assert v["verdict"] == "gap shown" and "race=B" in v["gaps"]
    assert v["text"].startswith("gap shown in race=B")
    judged = {x["group"]: x["detectable_gap"] for x in v["not_judged"]}
    assert "race=C" in judged and judged["race=C"] > 0.05  # 60 ECGs: only large gaps
    assert "this audit can detect AUROC gaps larger than" in v["text"]
    console = Console(record=True, width=300)
    print_verdicts(planted, None, console)
    assert f"verdict hf: {v['text']}" in console.export_text().replace("\n", " ")
    (card,) = build_view(planted, figures=False)["headline"]
    assert card["verdict_text"] == v["text"]


def test_verdict_no_gap_when_groups_are_large_and_equal() -> None:
    res = ecgaudit.audit(_cohort(8, {"A": 3000, "B": 3000}, {}), CFG)
    data = res.to_dict()
    v = task_verdict("hf", data["metrics"], data["disparities"], data["extras"]["power"],
                     important_gap=0.1)
    assert v["verdict"] == "no important gap shown", v["text"]
    assert v["text"] == "no important gap shown."


def test_policy_failure_is_a_gap_in_the_verdict(planted: Any) -> None:
    data = planted.to_dict()
    gate = {"rules": [{"outcome": "fail", "task": "hf", "attribute": "sex", "group": "F"}]}
    v = task_verdict("hf", data["metrics"], data["disparities"], data["extras"]["power"], gate)
    assert "sex=F" in v["gaps"]


def test_count_sentence_counts_groups_not_rows() -> None:
    def row(a: str, g: str, status: str, reason: str = "", task: str = "t") -> dict:
        return {"task": task, "attribute": a, "group": g, "metric": "auroc",
                "status": status, "reason": reason}

    small = "fewer than 11 patients in this group: suppressed for privacy"
    comp = "withheld for privacy (complementary suppression): ..."
    records = [
        row("race", "D", "suppressed", small), row("race", "D", "suppressed", small, "u"),
        row("race", "E", "suppressed", comp), row("race", "E", "suppressed", comp, "u"),
        row("race", "A", "ok"), row("race", "A", "unstable", task="u"),
        row("race", "B", "insufficient", "no positive cases"),
        row("race", "B", "unstable", task="u"),
        row("sex", "F", "insufficient", "no positive cases", task="u"),
        row("sex", "M", "ok"),
    ]
    text = count_sentence(records, 11, 10)
    assert text.startswith("2 groups were withheld for privacy (1 with fewer than 11 patients, "
                           "1 more so that their counts cannot be derived by subtraction)")
    assert "3 groups had too few events" in text
    assert "2 of them so few that some metrics could not be estimated" in text


def test_worst_group_ties_prefer_single_attributes_and_lower_is_better_metrics() -> None:
    recs = [
        {"task": "t", "attribute": "race & sex", "group": "A & F", "metric": "auroc",
         "estimate": 0.7, "status": "ok"},
        {"task": "t", "attribute": "race", "group": "A", "metric": "auroc",
         "estimate": 0.7, "status": "ok"},
        {"task": "t", "attribute": "race", "group": "B", "metric": "auroc",
         "estimate": None, "status": "suppressed"},
        {"task": "t", "attribute": "race", "group": "A", "metric": "ece",
         "estimate": 0.02, "status": "ok"},
        {"task": "t", "attribute": "race", "group": "B", "metric": "ece",
         "estimate": 0.09, "status": "unstable"},
    ]
    w = worst_group(recs, "t")
    assert (w.attribute, w.group, w.n_groups) == ("race", "A", 2)
    e = worst_group(recs, "t", "ece")
    assert (e.group, e.unstable, e.worse_than_chance) == ("B", True, False)
    assert worst_group(recs, "other") is None


def test_same_inputs_give_byte_identical_results() -> None:
    frame = _cohort(5, {"A": 400, "B": 300, "C": 30}, {"B": 1.2})
    assert ecgaudit.audit(frame, CFG).to_json() == ecgaudit.audit(frame, CFG).to_json()


def test_calibration_disparities_are_findings_with_their_direction() -> None:
    def disp(group: str, metric: str, diff: float, holm: float) -> dict:
        return {"task": "t", "attribute": "race", "group": group, "reference": "A",
                "metric": metric, "difference": diff, "difference_ci_low": diff - 0.1,
                "difference_ci_high": diff + 0.1, "p_holm": holm, "p_bh": holm,
                "status": "ok"}

    metrics = [{"task": "t", "attribute": "race", "group": "A", "metric": m,
                "estimate": v, "status": "ok"} for m, v in (("oe_ratio", 1.05),
                                                             ("cal_slope", 0.6))]
    records = [disp("B", "oe_ratio", 0.6, 0.001),      # O/E 1.65: worse than 1.05
               disp("C", "cal_slope", 0.35, 0.002),    # slope 0.95: better than 0.6
               disp("D", "ece", 0.04, 0.003),          # higher ECE: worse
               disp("E", "oe_ratio", -0.6, 0.2)]       # not significant after Holm
    confirmed, exploratory = select_findings(records, metrics)
    kinds = {f.record["group"]: f.kind for f in confirmed}
    assert kinds == {"B": "calibration", "C": "better", "D": "calibration"}
    assert [f.record["group"] for f in confirmed][-1] == "C"  # better-than-reference last
    assert exploratory == []
    from ecgaudit.reports._findings import disparity_sentence

    text = disparity_sentence(confirmed[0].record, False, confirmed[0].kind)
    assert text.endswith("worse calibration than the reference.")
