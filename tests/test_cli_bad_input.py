"""Every bad-input case through the real CLI: exit code 2, a message naming file, column,
value and rows, no traceback, and no output written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ecgaudit.cli import app

runner = CliRunner()


def _good(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    return pd.DataFrame({
        "ecg_id": np.arange(1, n + 1),
        "y": y,
        "p": np.clip(0.3 + 0.4 * y + rng.normal(0, 0.15, n), 0, 1),
        "sex": np.where(np.arange(n) % 3 == 0, "female", "male"),
        "age": rng.integers(20, 90, n).astype(float),
    })


def _run(tmp_path: Path, frame: pd.DataFrame, *extra: str, name: str = "preds.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    args = ["audit", str(path), "--label", "y", "--score", "p", "--sex", "sex", "--age", "age",
            "--out", str(out), *extra]
    result = runner.invoke(app, args)
    return result, out


def _assert_input_error(result, out: Path, *needles: str) -> str:
    text = result.output
    assert result.exit_code == 2, text
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    assert not out.exists() or not any(out.iterdir()), "no output may be written on error"
    return text


def test_good_input_works(tmp_path):
    result, out = _run(tmp_path, _good())
    assert result.exit_code == 0, result.output
    assert (out / "metrics.csv").is_file()


def test_missing_column_lists_what_exists_and_suggests(tmp_path):
    f = _good().rename(columns={"p": "prob"})
    result, out = _run(tmp_path, f)
    _assert_input_error(result, out, "preds.csv", "column 'p'", "column not found",
                        "available columns", "prob")


def test_non_binary_labels_with_swap_hint(tmp_path):
    f = _good()
    f["y"], f["p"] = f["p"], f["y"].astype(float)
    result, out = _run(tmp_path, f)
    _assert_input_error(result, out, "column 'y'", "labels must be 0/1", "swap label and score")


def test_text_labels_need_a_declared_positive_value(tmp_path):
    f = _good()
    f["y"] = np.where(f["y"] == 1, "HF", "no HF")
    result, out = _run(tmp_path, f)
    _assert_input_error(result, out, "column 'y'", "'HF'", "positive_label")
    result, out = _run(tmp_path, f, "--positive-label", "HF")
    assert result.exit_code == 0, result.output


def test_nan_and_infinite_scores_name_the_rows(tmp_path):
    f = _good()
    f.loc[4, "p"] = np.nan
    f.loc[9, "p"] = np.inf
    result, out = _run(tmp_path, f)
    _assert_input_error(result, out, "column 'p'", "rows 5, 10", "NaN or infinity")


def test_scores_outside_unit_interval_unless_logits(tmp_path):
    f = _good()
    f["p"] = (f["p"] - 0.5) * 8
    result, out = _run(tmp_path, f)
    _assert_input_error(result, out, "must lie in [0, 1]", "score_type: logit")
    result, out = _run(tmp_path, f, "--logits")
    assert result.exit_code == 0, result.output


def test_task_with_one_class_in_whole_cohort(tmp_path):
    f = _good()
    f["y"] = 0
    result, out = _run(tmp_path, f)
    _assert_input_error(result, out, "only negative cases", "cannot be audited")


def test_duplicate_ids(tmp_path):
    f = _good()
    f.loc[7, "ecg_id"] = 3
    result, out = _run(tmp_path, f, "--id", "ecg_id")
    _assert_input_error(result, out, "duplicate id", "rows 3, 8", "column 'ecg_id'")


def test_unparseable_and_impossible_ages_reported_together(tmp_path):
    f = _good().astype({"age": object})
    f.loc[2, "age"] = "sixty"
    f.loc[5, "age"] = -4
    f.loc[6, "age"] = 300
    result, out = _run(tmp_path, f)
    text = _assert_input_error(result, out, "column 'age'", "'sixty'", "row 3",
                               "impossible ages", "rows 6, 7", "2 problems")
    assert "recode" in text


def test_all_problems_of_a_file_are_reported_at_once(tmp_path):
    f = _good()
    f.loc[0, "p"] = np.nan
    f.loc[1, "y"] = 2
    f.loc[2, "age"] = 150
    result, out = _run(tmp_path, f)
    _assert_input_error(result, out, "3 problems", "row 1", "row 2", "row 3")


def test_join_mismatch_reports_counts_on_each_side(tmp_path):
    f = _good()
    pred = f[["ecg_id", "y", "p"]]
    meta = f[["ecg_id", "sex", "age"]].iloc[5:].copy()
    meta.loc[len(meta) + 100] = [999, "male", 50.0]
    meta_path = tmp_path / "meta.csv"
    meta.to_csv(meta_path, index=False)
    result, out = _run(tmp_path, pred, "--metadata", str(meta_path), "--id", "ecg_id")
    text = _assert_input_error(result, out, "preds.csv", "meta.csv",
                               "5 prediction rows have no metadata",
                               "1 metadata rows have no predictions", "rows 1, 2, 3, 4, 5",
                               "ECGAUDIT_SHOW_IDS=1")
    assert "999" not in text  # ids are shown only when asked (issue 13, class 8)
    args = ["audit", str(tmp_path / "preds.csv"), "--label", "y", "--score", "p", "--sex",
            "sex", "--age", "age", "--out", str(out), "--metadata", str(meta_path), "--id",
            "ecg_id"]
    result = runner.invoke(app, args, env={"ECGAUDIT_SHOW_IDS": "1"})
    _assert_input_error(result, out, "'999'")


def test_missing_input_file_and_bad_config(tmp_path):
    result = runner.invoke(app, ["audit", str(tmp_path / "nope.csv"), "--label", "y",
                                 "--score", "p"])
    assert result.exit_code == 2 and "does not exist" in result.output
    cfg = tmp_path / "audit.yaml"
    cfg.write_text("tasks:\n  - {name: t, label: y, score: p}\nattributes: {sex: {}}\nthreshhold: 0.5\n")
    f = _good()
    f.to_csv(tmp_path / "p.csv", index=False)
    result = runner.invoke(app, ["audit", str(tmp_path / "p.csv"), "--config", str(cfg)])
    assert result.exit_code == 2
    assert "audit.yaml" in result.output and "threshhold" in result.output
    assert "unknown key" in result.output


def test_unknown_reference_group_suggests_names(tmp_path):
    cfg = tmp_path / "audit.yaml"
    cfg.write_text("tasks:\n  - {name: t, label: y, score: p}\n"
                   "attributes: {sex: {reference: Male}}\n")
    _good().to_csv(tmp_path / "p.csv", index=False)
    result = runner.invoke(app, ["audit", str(tmp_path / "p.csv"), "--config", str(cfg),
                                 "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "'Male'" in result.output and "did you mean" in result.output.lower()


def test_unparseable_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not a parquet file")
    result = runner.invoke(app, ["audit", str(path), "--label", "y", "--score", "p"])
    assert result.exit_code == 2
    assert "broken.parquet" in result.output and "Traceback" not in result.output


def test_real_entry_point_exit_code_and_no_traceback(tmp_path):
    f = _good()
    f.loc[0, "p"] = 7.0
    path = tmp_path / "x.csv"
    f.to_csv(path, index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "ecgaudit", "audit", str(path), "--label", "y", "--score", "p",
         "--out", str(tmp_path / "o")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "x.csv" in proc.stderr and "row 1" in proc.stderr


def test_parquet_input_is_read(tmp_path):
    f = _good()
    _, out = _run(tmp_path, f, name="preds.csv")
    pq = tmp_path / "preds.parquet"
    f.to_parquet(pq)
    result2 = runner.invoke(app, ["audit", str(pq), "--label", "y", "--score", "p", "--sex",
                                  "sex", "--age", "age", "--out", str(tmp_path / "o2")])
    assert result2.exit_code == 0, result2.output
    a = pd.read_csv(out / "metrics.csv")
    b = pd.read_csv(tmp_path / "o2" / "metrics.csv")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("bad", ["yes", "2"])
def test_min_cell_option_validated(tmp_path, bad):
    _good().to_csv(tmp_path / "p.csv", index=False)
    result = runner.invoke(app, ["audit", str(tmp_path / "p.csv"), "--label", "y", "--score",
                                 "p", "--min-cell", bad, "--out", str(tmp_path / "o")])
    if bad == "yes":
        assert result.exit_code == 2
    else:
        assert result.exit_code == 0, result.output


def test_missing_ids_and_patient_ids(tmp_path):
    f = _good()
    f["pid"] = np.arange(len(f)).astype(float)
    f.loc[3, "pid"] = np.nan
    result, out = _run(tmp_path, f, "--patient", "pid")
    _assert_input_error(result, out, "missing patient id values", "column 'pid'", "row 4")
    g = _good().astype({"ecg_id": float})
    g.loc[0, "ecg_id"] = np.nan
    result, out = _run(tmp_path, g, "--id", "ecg_id")
    _assert_input_error(result, out, "missing id values", "row 1")


def test_bootstrap_bins_option_runs_binned_replicates_and_is_validated(tmp_path):
    result, out = _run(tmp_path, _good(200), "--bootstrap", "50", "--bootstrap-bins", "4096",
                       "--no-report")
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "results.json").read_text())
    assert saved["manifest"]["config"]["bootstrap_bins"] == 4096
    metrics = pd.read_csv(out / "metrics.csv")
    # Rates, AUROC and O/E keep their closed-form score intervals (docs/small-groups.md).
    boot = metrics[(metrics.status == "ok") & metrics.metric.isin(
        ["auprc", "brier", "ece", "cal_intercept", "cal_slope"]) & metrics.ci_low.notna()]
    method = boot["ci_method"]
    assert len(boot) and (method.str.startswith("bootstrap")
                          | method.str.endswith("-fallback")).all()
    assert method.str.startswith("bootstrap").mean() > 0.8
    result, _out2 = _run(tmp_path, _good(200), "--bootstrap", "50", "--bootstrap-bins", "100",
                        "--out", str(tmp_path / "bad"))
    _assert_input_error(result, tmp_path / "bad", "bootstrap_bins")
