"""Issue 13, classes 4 and 5: values are what the file says, and out-of-range or
contradictory settings are input errors naming the key - through the real CLI."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgaudit.io import read_table
from tests._hardening import AUDIT_FLAGS, assert_exit2, good_frame, invoke


def _audit(path: Path, out: Path, *extra: object, flags=AUDIT_FLAGS):
    return invoke(["audit", path, *flags, "--out", out, *extra])


def _groups(out: Path, attribute: str) -> set[str]:
    data = json.loads((out / "results.json").read_text())
    return {m["group"] for m in data["metrics"] if m["attribute"] == attribute}


# --- class 4: values are what the file says -------------------------------------------


def test_ids_are_text_leading_zeros_never_join_silently(tmp_path: Path) -> None:
    f = good_frame()
    pred = f[["ecg_id", "y", "p"]].assign(ecg_id=[f"{i:05d}" for i in f["ecg_id"]])
    meta = f[["ecg_id", "sex"]]
    pred.to_csv(tmp_path / "preds.csv", index=False)
    meta.to_csv(tmp_path / "meta.csv", index=False)
    res = _audit(tmp_path / "preds.csv", tmp_path / "o", "--metadata", tmp_path / "meta.csv",
                 "--id", "ecg_id")
    assert_exit2(res, "60 prediction rows have no metadata", "compared as text",
                 "'00001' is not '1'", out=tmp_path / "o")
    table = read_table(tmp_path / "preds.csv", text_columns=["ecg_id"])
    assert table.frame["ecg_id"].tolist()[:2] == ["00001", "00002"]


def test_ids_that_differ_only_by_leading_zeros_are_distinct(tmp_path: Path) -> None:
    f = good_frame()
    f["ecg_id"] = [("0" + str(i)) if i % 2 else str(i) for i in range(1, 61)]
    f.loc[1, "ecg_id"], f.loc[2, "ecg_id"] = "1", "01"  # "1" and "01" both present
    f.loc[0, "ecg_id"] = "x0"
    f.to_csv(tmp_path / "preds.csv", index=False)
    res = _audit(tmp_path / "preds.csv", tmp_path / "o", "--id", "ecg_id")
    assert res.exit_code == 0, res.output


def test_duplicate_header_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "preds.csv").write_text("ecg_id,y,p,sex,p\n1,0,0.1,male,0.2\n2,1,0.9,male,0.8\n")
    assert_exit2(_audit(tmp_path / "preds.csv", tmp_path / "o"), "preds.csv", "header",
                 "column 'p' appears twice", "columns 3 and 5", out=tmp_path / "o")


@pytest.mark.parametrize("code", ["NA", "N/A", "None", "null", "NaN"])
def test_literal_codes_are_group_values_unless_declared_missing(tmp_path: Path,
                                                                code: str) -> None:
    f = good_frame(120)
    f["race"] = np.where(np.arange(120) % 2 == 0, code, "White")
    f.to_csv(tmp_path / "preds.csv", index=False)
    flags = (*AUDIT_FLAGS, "--race", "race", "--min-cell", "1")
    res = _audit(tmp_path / "preds.csv", tmp_path / "o", flags=flags)
    assert res.exit_code == 0, res.output
    assert _groups(tmp_path / "o", "race") == {code, "White"}
    cfg = tmp_path / "audit.yaml"
    cfg.write_text(
        "tasks: [{name: t, label: y, score: p}]\nmin_cell_size: 1\n"
        f"attributes:\n  race: {{missing_values: ['{code}']}}\n")
    res = invoke(["audit", tmp_path / "preds.csv", "--config", cfg, "--out", tmp_path / "o2",
                  "--no-report"])
    assert res.exit_code == 0, res.output
    assert _groups(tmp_path / "o2", "race") == {"Unknown", "White"}


def test_na_age_is_an_error_with_a_missing_values_hint(tmp_path: Path) -> None:
    f = good_frame().astype({"age": object})
    f.loc[4, "age"] = "NA"
    f.to_csv(tmp_path / "preds.csv", index=False)
    res = _audit(tmp_path / "preds.csv", tmp_path / "o", "--age", "age")
    assert_exit2(res, "column 'age'", "row 5", "missing_values", out=tmp_path / "o")


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("sheet.xml", "<x/>")
    return buf.getvalue()


@pytest.mark.parametrize(("content", "what"), [
    (_zip_bytes(), "zip archive"),
    (b"PAR1" + bytes(100), "Parquet"),
    (b"ecg_id,y\n\x00\x01\x02\x03", "binary data"),
    (gzip.compress(b"ecg_id,y,p\n1,0,0.5\n", mtime=0), "gzip-compressed"),
    ("ecg_id,y,p,sex\n1,0,0.5,m\u00e4nnlich\n".encode("utf-16"), "not UTF-8"),
    ("ecg_id,y,p,sex\n1,0,0.5,m\u00e4nnlich\n".encode("latin-1"), "not UTF-8"),
])
def test_binary_file_named_csv_is_not_a_csv_file(tmp_path: Path, content: bytes,
                                                 what: str) -> None:
    (tmp_path / "preds.csv").write_bytes(content)
    assert_exit2(_audit(tmp_path / "preds.csv", tmp_path / "o"), "'preds.csv'",
                 "is not a CSV file", what, absent=("no data rows",), out=tmp_path / "o")


def test_parse_errors_do_not_quote_the_file(tmp_path: Path) -> None:
    (tmp_path / "preds.csv").write_text('ecg_id,y,p\n1,0,0.5\n2,"SECRET,1\n3,1,0.2,9,9\n')
    res = _audit(tmp_path / "preds.csv", tmp_path / "o")
    assert_exit2(res, "preds.csv", absent=("SECRET",))


# --- class 5: ranges and contradictions ----------------------------------------------


@pytest.fixture()
def preds(tmp_path: Path) -> Path:
    good_frame().to_csv(tmp_path / "preds.csv", index=False)
    return tmp_path / "preds.csv"


def _config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "audit.yaml"
    p.write_text("tasks: [{name: t, label: y, score: p}]\nattributes: {sex: {}}\n" + body)
    return p


def _with_config(preds: Path, cfg: Path, out: Path, *extra: object):
    return invoke(["audit", preds, "--config", cfg, "--out", out, "--no-report", *extra])


@pytest.mark.parametrize(("body", "needles"), [
    ("threshold: {rule: fixed, value: 1.5}\n", ("threshold.value", "less than or equal to 1")),
    ("threshold: {rule: fixed, value: -0.1}\n", ("threshold.value",)),
    ("threshold: {rule: fixed, value: .nan}\n", ("threshold.value", "finite")),
    ("threshold: {rule: fixed, value: .inf}\n", ("threshold.value", "finite")),
    ("threshold: {rule: fixed, target: 0.9}\n", ("threshold", "'target'", "rule 'fixed'")),
    ("threshold: {rule: youden, value: 0.3}\n", ("threshold", "'value' applies to rule")),
    ("task_thresholds: {t: {rule: fixed, value: 2}}\n", ("task_thresholds.t.value",)),
    ("ci_level: .nan\n", ("ci_level",)),
    ("attributes: {age: {kind: age, max_age: .inf}}\n", ("attributes.age.max_age",)),
])
def test_out_of_range_and_contradictory_config(preds: Path, tmp_path: Path, body: str,
                                              needles: tuple[str, ...]) -> None:
    cfg = _config(tmp_path, body) if not body.startswith("attributes") else (
        tmp_path / "a.yaml")
    if body.startswith("attributes"):
        cfg.write_text("tasks: [{name: t, label: y, score: p}]\n" + body)
    assert_exit2(_with_config(preds, cfg, tmp_path / "o"), cfg.name, *needles,
                 out=tmp_path / "o")


def test_threshold_flag_out_of_range(preds: Path, tmp_path: Path) -> None:
    res = invoke(["audit", preds, *AUDIT_FLAGS, "--threshold", "7", "--out", tmp_path / "o"])
    assert_exit2(res, "threshold.value", out=tmp_path / "o")
    res = invoke(["audit", preds, *AUDIT_FLAGS, "--threshold", "nan", "--out", tmp_path / "o"])
    assert_exit2(res, "threshold.value", out=tmp_path / "o")


@pytest.mark.parametrize("rule", ["min: .nan", "max: .inf", "between: [0.5, .nan]",
                                  "max_abs_difference: .nan"])
def test_non_finite_policy_numbers_stop_before_any_work(preds: Path, tmp_path: Path,
                                                        rule: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"rules:\n  - metric: auroc\n    {rule}\n")
    res = invoke(["audit", preds, *AUDIT_FLAGS, "--policy", policy, "--out", tmp_path / "o"])
    assert_exit2(res, "policy.yaml", "rules.0", "finite", out=tmp_path / "o")


def test_too_many_groups_stop_early_with_a_hint(tmp_path: Path) -> None:
    n = 2000
    f = good_frame(n)
    f["race"] = [f"r{i}" for i in range(n)]  # 2,000 distinct values
    f.to_csv(tmp_path / "preds.csv", index=False)
    res = _audit(tmp_path / "preds.csv", tmp_path / "o", flags=(*AUDIT_FLAGS, "--race", "race"))
    assert_exit2(res, "attribute 'race'", "column 'race'", "2000 distinct groups",
                 "limit of 200", "max_groups", "recode", out=tmp_path / "o")


def test_group_limit_is_configurable(preds: Path, tmp_path: Path) -> None:
    f = good_frame()
    f["site"] = [f"s{i % 3}" for i in range(len(f))]
    f.to_csv(preds, index=False)
    cfg = tmp_path / "audit.yaml"
    cfg.write_text("tasks: [{name: t, label: y, score: p}]\nattributes: {sex: {}, site: {}}\n"
                   "max_groups: 2\n")
    assert_exit2(_with_config(preds, cfg, tmp_path / "o"), "attribute 'site'", "3 distinct",
                 "limit of 2", out=tmp_path / "o")
    cfg.write_text(cfg.read_text().replace("max_groups: 2", "max_groups: 3\nmin_cell_size: 1"))
    assert _with_config(preds, cfg, tmp_path / "o").exit_code == 0


def test_parquet_ids_are_text_too(tmp_path: Path) -> None:
    pd.DataFrame({"ecg_id": [1, 2], "v": [0.1, 0.2]}).to_parquet(tmp_path / "t.parquet")
    frame = read_table(tmp_path / "t.parquet", text_columns=["ecg_id"]).frame
    assert frame["ecg_id"].tolist() == ["1", "2"]


def test_na_written_in_a_label_or_patient_column_is_named(tmp_path: Path) -> None:
    f = good_frame().astype({"y": object})
    f.loc[3, "y"] = "NA"
    f.to_csv(tmp_path / "preds.csv", index=False)
    assert_exit2(_audit(tmp_path / "preds.csv", tmp_path / "o"), "column 'y'", "row 4",
                 "label is missing (written as 'NA')", out=tmp_path / "o")
    f = good_frame()
    f["pid"] = [f"p{i}" for i in range(len(f))]
    f.loc[[2, 9], "pid"] = "NA"
    f.to_csv(tmp_path / "preds.csv", index=False)
    res = _audit(tmp_path / "preds.csv", tmp_path / "o", "--patient", "pid")
    assert_exit2(res, "column 'pid'", "rows 3, 10", "missing patient id", "'NA'",
                 out=tmp_path / "o")
