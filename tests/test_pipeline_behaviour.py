"""Cohort rules, honest statuses, small-cell suppression, determinism and the result files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import ecgaudit
from ecgaudit.cli import app
from ecgaudit.cohort import age_band_labels
from ecgaudit.metrics._table import REASON_NO_POS
from ecgaudit.privacy import REASON_SUPPRESSED
from ecgaudit.schema import DISPARITY_COLUMNS, METRIC_COLUMNS, METRICS
from tests.conftest import synthetic_config


def test_age_band_labels_default_and_custom():
    assert age_band_labels((40, 60, 80)) == ["<40", "40-59", "60-79", "80+"]
    assert age_band_labels((18, 65)) == ["<18", "18-64", "65+"]


def test_age_bands_edges_and_unknown():
    df = pd.DataFrame({"y": [0, 1] * 6, "p": np.linspace(0.05, 0.95, 12),
                       "age": [39.9, 40, 59, 60, 79.5, 80, 95, None, 20, 45, 65, 85]})
    cfg = {"tasks": [{"name": "t", "label": "y", "score": "p"}],
           "attributes": {"age": {"kind": "age"}}, "min_cell_size": 1}
    r = ecgaudit.audit(df, cfg)
    n = r.metrics[(r.metrics.metric == "brier") & (r.metrics.attribute == "age")]
    counts = dict(zip(n.group, n.n))
    assert counts == {"<40": 2, "40-59": 3, "60-79": 3, "80+": 3, "Unknown": 1}


def test_recode_maps_coded_ages():
    df = pd.DataFrame({"y": [0, 1] * 3, "p": np.linspace(0.1, 0.9, 6),
                       "age": [300, 30, 50, 70, 300, 90]})
    cfg = {"tasks": [{"name": "t", "label": "y", "score": "p"}],
           "attributes": {"age": {"kind": "age", "recode": {"300": "90"}}}, "min_cell_size": 1}
    r = ecgaudit.audit(df, cfg)
    n = r.metrics[(r.metrics.metric == "brier") & (r.metrics.attribute == "age")]
    assert dict(zip(n.group, n.n))["80+"] == 3


def test_default_reference_is_largest_known_group_and_configurable(synthetic):
    cfg = synthetic_config()
    cfg["attributes"] = {"race": {}, "sex": {"reference": "male"}}
    r = ecgaudit.audit(synthetic, cfg)
    refs = r.extras["reference_groups"]
    assert refs["race"] == synthetic.race.value_counts().idxmax()
    assert refs["sex"] == "male"
    assert refs["race & sex"] == f"{refs['race']} & male"
    assert set(r.disparities[r.disparities.attribute == "sex"].reference) == {"male"}


def test_intersection_options(synthetic):
    r = ecgaudit.audit(synthetic, synthetic_config(intersections="none"))
    assert set(r.metrics.attribute) == {"overall", "race", "sex", "age"}
    r = ecgaudit.audit(synthetic, synthetic_config(intersections="all"))
    assert "race & sex & age" in set(r.metrics.attribute)
    r = ecgaudit.audit(synthetic, synthetic_config(intersections=[["sex", "age"]]))
    assert set(r.metrics.attribute) == {"overall", "race", "sex", "age", "sex & age"}


def test_single_class_group_is_insufficient_never_a_number():
    rng = np.random.default_rng(0)
    n = 200
    site = np.where(np.arange(n) < 40, "B", "A")
    y = np.where(site == "B", 0, rng.integers(0, 2, n))
    df = pd.DataFrame({"y": y, "p": rng.random(n), "site": site})
    r = ecgaudit.audit(df, {"tasks": [{"name": "t", "label": "y", "score": "p"}],
                            "attributes": {"site": {}}})
    b = r.metrics[(r.metrics.group == "B")].set_index("metric")
    for metric in ("auroc", "auprc", "sensitivity", "fnr", "cal_slope", "cal_intercept"):
        assert b.loc[metric, "status"] == "insufficient"
        assert np.isnan(b.loc[metric, "estimate"])
        assert b.loc[metric, "reason"] == REASON_NO_POS
    assert b.loc["specificity", "status"] in ("ok", "unstable")
    assert np.isfinite(b.loc["specificity", "estimate"])
    d = r.disparities[(r.disparities.group == "B") & (r.disparities.metric == "auroc")].iloc[0]
    assert d.status == "insufficient" and np.isnan(d.difference)


def test_unstable_flag_for_few_events():
    rng = np.random.default_rng(1)
    n = 300
    y = (rng.random(n) < 0.02).astype(int)
    y[:3] = 1
    df = pd.DataFrame({"y": y, "p": rng.random(n)})
    r = ecgaudit.audit(df, {"tasks": [{"name": "t", "label": "y", "score": "p"}],
                            "min_events": 10})
    row = r.metrics[r.metrics.metric == "auroc"].iloc[0]
    assert row.status == "unstable" and "fewer than 10 positive" in row.reason
    assert np.isfinite(row.estimate)


def test_small_cells_suppressed_in_every_exported_table(synthetic, tmp_path):
    r = ecgaudit.audit(synthetic, synthetic_config())
    m = r.metrics
    sup = m[m.status == "suppressed"]
    assert len(sup) > 0
    assert sup.estimate.isna().all() and sup.ci_low.isna().all()
    # whole groups (too few patients) lose their counts too; rows withheld for event
    # counts or as complements say so (docs/small-groups.md#suppression)
    whole = sup[sup.reason == REASON_SUPPRESSED.format(k=11)]
    assert whole.n.isna().all() and whole.n_pos.isna().all()
    assert sup.reason.str.startswith(("fewer than 11 patients", "withheld for privacy")).all()
    sup = whole
    # every group with 1..10 patients is suppressed, counted in patients
    pats = synthetic.assign(race=synthetic.race.fillna("Unknown")).groupby(
        ["race", "sex"]).patient_id.nunique()
    small = {f"{a} & {b}" for (a, b), v in pats.items() if v < 11}
    got = set(sup[sup.attribute == "race & sex"].group)
    assert small == got
    d = r.disparities
    assert d[d.group.isin(small) & (d.attribute == "race & sex")].status.eq("suppressed").all()
    paths = r.save(tmp_path)
    csv = pd.read_csv(paths["metrics"])
    gone = csv[csv.status == "suppressed"]
    assert gone.estimate.isna().all()
    assert gone[gone.reason == REASON_SUPPRESSED.format(k=11)][["n", "n_pos"]].isna().all().all()
    cohort = json.loads(paths["results"].read_text())["extras"]["cohort"]
    for row in cohort:
        if row["group"] in small and row["attribute"] == "race & sex":
            assert row["n"] is None and row["status"] == "suppressed"


def test_result_files_schema_and_roundtrip(synthetic, tmp_path):
    r = ecgaudit.audit(synthetic, synthetic_config())
    paths = r.save(tmp_path)
    m = pd.read_csv(paths["metrics"])
    assert tuple(m.columns) == METRIC_COLUMNS
    assert set(m.metric) == set(METRICS)
    d = pd.read_csv(paths["disparities"])
    assert tuple(d.columns) == DISPARITY_COLUMNS
    assert d.p_holm.dropna().ge(d.p_value.dropna().min()).all()
    loaded = ecgaudit.AuditResult.load(paths["results"])
    pd.testing.assert_frame_equal(loaded.metrics.reset_index(drop=True),
                                  r.metrics.reset_index(drop=True), check_dtype=False)
    data = json.loads(paths["results"].read_text())
    man = data["manifest"]
    for key in ("ecgaudit_version", "dependencies", "seed", "config", "inputs",
                "schema_version", "thresholds"):
        assert key in man
    assert man["config"]["tasks"][0]["name"] == "hf"
    assert len(man["inputs"][0]["sha256"]) == 64


def test_same_inputs_and_seed_give_byte_identical_json(ptbxl_paths, tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"run{i}"
        res = CliRunner().invoke(app, [
            "audit", str(ptbxl_paths["predictions"]), "--metadata",
            str(ptbxl_paths["metadata"]), "--config", str(ptbxl_paths["config"]),
            "--out", str(out)])
        assert res.exit_code == 0, res.output
        outs.append(out)
    for name in ("results.json", "metrics.csv", "disparities.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
    man = json.loads((outs[0] / "results.json").read_text())["manifest"]
    names = {i["name"] for i in man["inputs"]}
    assert names == {"predictions.csv", "metadata.csv"}  # base names, never paths
    assert str(tmp_path) not in (outs[0] / "results.json").read_text()


def test_no_config_cli_mode_multi_task(synthetic, tmp_path):
    path = tmp_path / "s.parquet"
    synthetic.to_parquet(path)
    res = CliRunner().invoke(app, [
        "audit", str(path), "--label", "y_hf", "--score", "p_hf", "--label", "y_af",
        "--score", "p_af", "--task", "hf", "--task", "af", "--race", "race", "--sex", "sex",
        "--age", "age", "--patient", "patient_id", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    m = pd.read_csv(tmp_path / "o" / "metrics.csv")
    assert set(m.task) == {"hf", "af"}
    assert {"race", "sex", "age", "race & sex"} <= set(m.attribute)


def test_derived_threshold_on_subset_is_recorded(synthetic):
    df = synthetic.assign(split=np.where(np.arange(len(synthetic)) % 2 == 0, "dev", "test"))
    cfg = synthetic_config(threshold={"rule": "specificity", "target": 0.8,
                                      "derive_on": {"column": "split", "values": ["dev"]}})
    r = ecgaudit.audit(df, cfg)
    th = r.manifest["thresholds"]["hf"]
    dev = df[df.split == "dev"]
    spec = np.mean(dev.p_hf[dev.y_hf == 0] < th["value"])
    assert spec >= 0.8
    assert "split" in th["derived_on"]


def test_public_api_is_pinned():
    assert sorted(ecgaudit.__all__) == sorted([
        "AttributeConfig", "AuditConfig", "AuditResult", "ComputationError", "ConfigError",
        "EcgAuditError", "InputError", "JoinError", "ModelLoadError", "TaskConfig",
        "ThresholdConfig", "ValidationError", "__version__", "audit", "audit_files",
        "load_config",
    ])


@pytest.mark.parametrize("metric", METRICS)
def test_every_metric_handles_degenerate_inputs(metric):
    """Common degenerate inputs for every metric: all-equal scores, tiny groups, saturation."""
    from ecgaudit.metrics import group_stats
    cases = {
        "all_equal_scores": (np.array([0, 1, 0, 1]), np.full(4, 0.5)),
        "saturated": (np.array([0, 1, 0, 1, 1]), np.array([0.0, 1.0, 0.0, 1.0, 1.0])),
        "one_row": (np.array([1]), np.array([0.7])),
        "only_negatives": (np.zeros(6, dtype=int), np.linspace(0, 1, 6)),
    }
    for y, p in cases.values():
        v = group_stats(y, p, 0.5).values[metric]
        assert v.status in ("ok", "unstable", "insufficient")
        if v.status == "insufficient":
            assert np.isnan(v.estimate) and v.reason
        else:
            assert np.isfinite(v.estimate)


def test_extras_curves_suite_ranking_power(synthetic):
    from sklearn.metrics import roc_auc_score

    from ecgaudit.metrics import calibration_suite

    r = ecgaudit.audit(synthetic, synthetic_config())
    ex = r.extras
    black = synthetic[synthetic.race == "Black"]
    curve = ex["curves"]["hf"]["race"]["Black"]
    assert sum(b["n"] for b in curve["bins"]) == len(black)
    assert len(curve["smooth"]["p"]) == len(curve["smooth"]["y"]) > 5
    suite = next(s for s in ex["calibration_suite"]
             if (s["task"], s["attribute"], s["group"]) == ("hf", "race", "Black"))
    ref = calibration_suite(black.y_hf.to_numpy(), black.p_hf.to_numpy())
    assert suite["ici"] == pytest.approx(ref["ici"])
    # ranking: BPSN for Black = AUROC on Black negatives + everyone else's positives
    bg = synthetic.race == "Black"
    sub = synthetic[(bg & (synthetic.y_hf == 0)) | (~bg & (synthetic.y_hf == 1))]
    bpsn = next(x for x in ex["ranking"] if (x["task"], x["attribute"], x["group"], x["metric"])
            == ("hf", "race", "Black", "bpsn_auc"))
    assert bpsn["estimate"] == pytest.approx(roc_auc_score(sub.y_hf, sub.p_hf))
    power = next(x for x in ex["power"] if (x["task"], x["attribute"], x["group"])
             == ("hf", "race", "Black"))
    assert 0 < power["min_detectable_auroc_difference"] < 0.2
    # nothing about small cells leaks into the extras
    small = set(r.metrics[r.metrics.reason == REASON_SUPPRESSED.format(k=11)].group)
    for key in ("calibration_suite", "ranking", "power"):
        assert not any(x["group"] in small for x in ex[key])
