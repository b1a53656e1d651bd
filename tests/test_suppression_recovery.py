"""No suppressed small count can be recovered from the exports (issue 12, item 6).

A planted cohort has a 5-patient race group, a 10-ECG site, groups with few events and
intersections. The attacker reads every export (metrics.csv, disparities.csv, results.json
with cohort table and extras, the report's cohort table) and repeats, until nothing new is
learnt: within-row derivations (rate x denominator, n - n_pos, curve bins) and subtraction
over every additive constraint (overall minus an attribute's groups, an intersection's
margin minus its cells). No true count of 1..10 may end up known.
"""

from __future__ import annotations

import json
import math
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import ecgaudit
from ecgaudit.privacy import is_small_cell
from ecgaudit.reports._model import build_view

K = 11
ATTRS = ("race", "sex", "site")
TASKS = ("hf", "af")


def _cohort(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    race = np.repeat(["A", "B", "C", "D"], [700, 420, 120, 5])
    n_pat = race.size
    sex = rng.choice(["F", "M"], n_pat)
    site = rng.choice(["s1", "s2"], n_pat, p=[0.6, 0.4])
    site[rng.choice(n_pat, 8, replace=False)] = "s3"  # a tiny site
    visits = rng.choice([1, 2], n_pat, p=[0.8, 0.2])
    idx = np.repeat(np.arange(n_pat), visits)
    frame = pd.DataFrame({"ecg_id": np.arange(idx.size), "patient_id": idx,
                          "race": race[idx], "sex": sex[idx], "site": site[idx]})
    for task, prev in (("hf", 0.3), ("af", 0.04)):  # af: few events in most groups
        y = (rng.random(idx.size) < prev).astype(int)
        frame[f"y_{task}"] = y
        frame[f"p_{task}"] = 1 / (1 + np.exp(-(2.5 * y - 1.2 + rng.normal(0, 1, y.size))))
    return frame


def _config() -> dict[str, Any]:
    return {"id_column": "ecg_id", "patient_column": "patient_id",
            "tasks": [{"name": t, "label": f"y_{t}", "score": f"p_{t}"} for t in TASKS],
            "attributes": {a: {} for a in ATTRS}, "intersections": "pairs",
            "threshold": {"rule": "fixed", "value": 0.5}, "min_cell_size": K}


def _truth(frame: pd.DataFrame) -> dict[tuple, int]:
    """Every count the exports could reveal, computed here from the rows."""
    cells: dict[tuple[str, str], pd.DataFrame] = {("overall", "all"): frame}
    for a in ATTRS:
        for g, part in frame.groupby(a):
            cells[(a, str(g))] = part
    for a, b in [(x, y) for i, x in enumerate(ATTRS) for y in ATTRS[i + 1:]]:
        for (ga, gb), part in frame.groupby([a, b]):
            cells[(f"{a} & {b}", f"{ga} & {gb}")] = part
    out: dict[tuple, int] = {}
    for (a, g), part in cells.items():
        out[("n", a, g)] = len(part)
        out[("patients", a, g)] = part.patient_id.nunique()
        for t in TASKS:
            y, hit = part[f"y_{t}"].to_numpy(), part[f"p_{t}"].to_numpy() >= 0.5
            out[("n_pos", t, a, g)] = int(y.sum())
            out[("TP", t, a, g)] = int((hit & (y == 1)).sum())
            out[("FN", t, a, g)] = int((~hit & (y == 1)).sum())
            out[("FP", t, a, g)] = int((hit & (y == 0)).sum())
            out[("TN", t, a, g)] = int((~hit & (y == 0)).sum())
    return out


def _published(out: Path) -> dict[tuple, float]:
    known: dict[tuple, float] = {}
    metrics = pd.read_csv(out / "metrics.csv", dtype={"group": str})
    for r in metrics.itertuples(index=False):
        if pd.notna(r.n):
            known[("n", r.attribute, r.group)] = float(r.n)
        if pd.notna(r.n_pos):
            known[("n_pos", r.task, r.attribute, r.group)] = float(r.n_pos)
        if pd.notna(r.estimate):
            known[("rate", r.metric, r.task, r.attribute, r.group)] = float(r.estimate)
    data = json.loads((out / "results.json").read_text())
    for c in data["extras"]["cohort"]:
        a, g = c["attribute"], str(c["group"])
        if c["n"] is not None:
            known[("n", a, g)] = float(c["n"])
        if c["n_patients"] is not None:
            known[("patients", a, g)] = float(c["n_patients"])
        for t, v in c["n_pos_by_task"].items():
            if v is not None:
                known[("n_pos", t, a, g)] = float(v)
    for t, panels in data["extras"]["curves"].items():
        for a, groups in panels.items():
            for g, curve in groups.items():
                known[("n", a, g)] = float(sum(b["n"] for b in curve["bins"]))
                known[("n_pos", t, a, g)] = float(round(sum(
                    b["n"] * b["y_mean"] for b in curve["bins"])))
    # disparities: group = reference + difference, for every published comparison
    disp = pd.read_csv(out / "disparities.csv", dtype={"group": str, "reference": str})
    for r in disp.itertuples(index=False):
        ref = ("rate", r.metric, r.task, r.attribute, r.reference)
        if pd.notna(r.difference) and ref in known:
            known.setdefault(("rate", r.metric, r.task, r.attribute, r.group),
                             known[ref] + float(r.difference))
    return known


def _constraints(truth: dict[tuple, int]) -> list[list[tuple[str, str]]]:
    cells = sorted({(k[-2], k[-1]) for k in truth})
    out = []
    for a in ATTRS:
        out.append([("overall", "all")] + [c for c in cells if c[0] == a])
    for a, b in [(x, y) for i, x in enumerate(ATTRS) for y in ATTRS[i + 1:]]:
        inter = [c for c in cells if c[0] == f"{a} & {b}"]
        out.append([("overall", "all"), *inter])
        for j, margin_attr in enumerate((a, b)):
            for m in {c[1].split(" & ")[j] for c in inter}:
                out.append([(margin_attr, m)] + [c for c in inter
                                                 if c[1].split(" & ")[j] == m])
    return out


def _row_rules(known: dict[tuple, float], t: str, a: str, g: str) -> None:
    """Derive counts within one row: rates x denominators and complements."""
    def get(*key: Any) -> float | None:
        return known.get(key)

    def put(key: tuple, value: float | None) -> None:
        if value is not None and not math.isnan(value) and key not in known:
            known[key] = float(round(value))

    n, pos = get("n", a, g), get("n_pos", t, a, g)
    rate = {m: get("rate", m, t, a, g) for m in ("sensitivity", "fnr", "specificity", "fpr",
                                                 "flag_rate", "ppv", "npv")}
    if n is not None and pos is not None:
        neg = n - pos
        for m, cell, den in (("sensitivity", "TP", pos), ("fnr", "FN", pos),
                             ("specificity", "TN", neg), ("fpr", "FP", neg)):
            if rate[m] is not None:
                put((cell, t, a, g), rate[m] * den)
    for total, x, y in (("n_pos", "TP", "FN"),):
        tot = get(total, t, a, g)
        for u, v in ((x, y), (y, x)):
            if tot is not None and get(u, t, a, g) is not None:
                put((v, t, a, g), tot - known[(u, t, a, g)])
    if n is not None and pos is not None:
        for u, v in (("FP", "TN"), ("TN", "FP")):
            if get(u, t, a, g) is not None:
                put((v, t, a, g), n - pos - known[(u, t, a, g)])
    if n is not None and rate["flag_rate"] is not None:
        pp = rate["flag_rate"] * n
        for u, v in (("TP", "FP"), ("FP", "TP")):
            if get(u, t, a, g) is not None:
                put((v, t, a, g), pp - known[(u, t, a, g)])
    tp = get("TP", t, a, g)
    if tp is not None and rate["ppv"]:
        put(("FP", t, a, g), tp / rate["ppv"] - tp)
    if all(get(c, t, a, g) is not None for c in ("TP", "FN", "FP", "TN")):
        put(("n", a, g), sum(known[(c, t, a, g)] for c in ("TP", "FN", "FP", "TN")))
        put(("n_pos", t, a, g), known[("TP", t, a, g)] + known[("FN", t, a, g)])


def _attack(known: dict[tuple, float], truth: dict[tuple, int]) -> dict[tuple, float]:
    constraints = _constraints(truth)
    kinds = [("n",), ("patients",)] + [(c, t) for c in ("n_pos", "TP", "FN", "FP", "TN")
                                       for t in TASKS]
    cells = sorted({(k[-2], k[-1]) for k in truth})
    while True:
        before = len(known)
        for t, (a, g) in product(TASKS, cells):
            _row_rules(known, t, a, g)
        for kind, members in product(kinds, constraints):
            keys = [(*kind, *c) for c in members]
            unknown = [k for k in keys if k not in known]
            if len(unknown) == 1:
                total, parts = keys[0], keys[1:]
                if unknown[0] == total:
                    known[total] = sum(known[k] for k in parts)
                else:
                    known[unknown[0]] = known[total] - sum(known[k] for k in parts
                                                           if k != unknown[0])
        if len(known) == before:
            return known


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    frame = _cohort()
    result = ecgaudit.audit(frame, _config())
    out = tmp_path_factory.mktemp("supp")
    result.save(out)
    return {"frame": frame, "result": result, "out": out, "truth": _truth(frame)}


def test_the_planted_cohort_has_small_cells_of_every_kind(audited: dict[str, Any]) -> None:
    truth = audited["truth"]
    small = {k[0] for k, v in truth.items() if is_small_cell(v, K)}
    assert {"n", "patients", "n_pos", "TP", "FN", "FP", "TN"} <= small
    assert truth[("patients", "race", "D")] == 5
    supp = audited["result"].extras["suppression"]
    assert supp["groups_primary"] > 0 and supp["groups_complementary"] > 0
    assert supp["rates_primary"] > 0 and supp["positives_primary"] > 0


def test_no_small_count_is_recoverable_from_any_export(audited: dict[str, Any]) -> None:
    truth = audited["truth"]
    known = _attack(_published(audited["out"]), truth)
    # the attack is real: it recovers many (large) counts, and exactly
    recovered = [k for k in truth if k in known]
    assert len(recovered) > 50
    assert all(known[k] == truth[k] for k in recovered), "the attack itself is wrong"
    leaked = sorted(k for k in recovered if is_small_cell(truth[k], K))
    assert leaked == []


def test_attack_succeeds_without_complementary_suppression(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Control: the same attack does recover small counts when complements are off."""
    from ecgaudit.privacy import _plan

    monkeypatch.setattr(_plan, "_constraints", lambda cells: [])
    frame = _cohort()
    ecgaudit.audit(frame, _config()).save(tmp_path)
    truth = _truth(frame)
    known = _attack(_published(tmp_path), truth)
    leaked = {k for k in truth if k in known and is_small_cell(truth[k], K)}
    assert ("n", "race", "D") in leaked and ("patients", "race", "D") in leaked
    assert any(k[0] in ("TP", "FN", "FP", "TN") for k in leaked)


def test_report_cohort_table_and_shares_show_only_published_counts(
        audited: dict[str, Any]) -> None:
    result = audited["result"]
    view = build_view(result, figures=False)
    published = {(c["attribute"], str(c["group"])) for c in result.extras["cohort"]
                 if c["n"] is not None}
    for block in view["cohort"]:
        for row in block["rows"]:
            assert (block["attribute"], row["group"]) in published
    withheld = {(c["attribute"], str(c["group"])) for c in result.extras["cohort"]
                if c["n"] is None}
    assert ("race", "D") in withheld and ("site", "s3") in withheld
    for c in result.extras["cohort"]:
        for t, v in c["n_pos_by_task"].items():
            assert v is None or not is_small_cell(v, K), (c["attribute"], c["group"], t)
    metrics = result.metrics
    assert not is_small_cell(metrics["n_pos"].astype(float), K).any()


def test_paired_comparison_withholds_what_the_audits_withhold() -> None:
    from ecgaudit.config import parse_config
    from ecgaudit.pipeline import compare_predictions

    frame = _cohort()
    cand = frame.copy()
    for t in TASKS:
        cand[f"p_{t}"] = np.clip(cand[f"p_{t}"] * 0.9 + 0.05, 0, 1)
    config = parse_config(_config())
    table = compare_predictions(frame, cand, config, n_boot=20).table
    truth = {name: _truth(f) for name, f in (("baseline", frame), ("candidate", cand))}
    shown = table[table.status != "suppressed"]
    assert len(shown) > 0
    for r in shown.itertuples(index=False):
        if r.metric in ("sensitivity", "specificity", "ppv", "npv", "fnr", "fpr", "flag_rate"):
            for t in truth.values():
                cells = [t[(c, r.task, r.attribute, r.group)] for c in ("TP", "FN", "FP", "TN")]
                assert not is_small_cell(cells, K).any(), (r.task, r.attribute, r.group)
    sizes = table.drop_duplicates(["attribute", "group"]).set_index(["attribute", "group"]).n
    assert pd.isna(sizes[("race", "D")])
    for attr in ATTRS:  # overall minus the published groups never gives one hidden size
        part = sizes[sizes.index.get_level_values(0) == attr]
        assert part.isna().sum() != 1, attr
