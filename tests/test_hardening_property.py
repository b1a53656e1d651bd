"""Issue 13: property-based bad input. Whatever a table or a config holds, the Python API
raises an ``EcgAuditError`` or returns a result, and the CLI exits 0 or 2 - never a
traceback, never a half-written output, never a CSV cell a spreadsheet would run."""

from __future__ import annotations

import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ecgaudit
from ecgaudit.config import parse_config
from ecgaudit.errors import ConfigError, EcgAuditError
from tests._hardening import FORMULA_START, assert_no_formula_cells, invoke

SETTINGS = {"deadline": None, "derandomize": True,
            "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
TRICKY = ["NA", "N/A", "None", "null", "", " ", "=1+1", "@SUM(A1)", "-3", "+4", "00001",
          "\x1b]0;t\x07", "\u202eevil", "caf\u00e9", "a,b", 'q"uote', "0", "1.0"]
group_name = st.sampled_from(TRICKY) | st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00\r\n"), max_size=6)
cell = group_name | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-3, 3)


@st.composite
def tables(draw: st.DrawFn) -> pd.DataFrame:
    """Valid-looking tables with arbitrary group values and a few corrupted cells."""
    n = 2 * draw(st.integers(12, 20))
    groups = draw(st.lists(group_name, min_size=1, max_size=4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    y = np.tile([0, 1], n // 2).astype(object)
    frame = pd.DataFrame({
        "id": [str(i) for i in range(n)],
        "y": y,
        "p": rng.uniform(0, 1, n).round(3).astype(object),
        "g": [groups[i % len(groups)] for i in range(n)],
    }).astype(object)
    for _ in range(draw(st.integers(0, 2))):  # corrupt a few cells anywhere
        col = draw(st.sampled_from(["y", "p", "g", "id"]))
        frame.loc[draw(st.integers(0, n - 1)), col] = draw(cell)
    return frame


CONFIG = {"tasks": [{"name": "t", "label": "y", "score": "p"}],
          "attributes": {"g": {}}, "id_column": "id", "min_cell_size": 1}


def _check_output_files(files: dict[str, bytes]) -> None:
    for name, data in files.items():
        if name.endswith(".csv"):
            for row in pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False
                                   ).itertuples(index=False):
                for value in row:
                    assert not (value.startswith(FORMULA_START) and not _is_number(value))
    json.loads(files["results.json"])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@settings(max_examples=12, **SETTINGS)
@given(frame=tables())
def test_api_raises_only_ecgaudit_errors(frame: pd.DataFrame) -> None:
    try:
        result = ecgaudit.audit(frame, CONFIG)
    except EcgAuditError:
        return
    _check_output_files(result.output_files())


@settings(max_examples=4, **SETTINGS)
@given(frame=tables())
def test_cli_exits_0_or_2_and_never_half_writes(frame: pd.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as d:
        path, out = Path(d) / "preds.csv", Path(d) / "out"
        frame.to_csv(path, index=False)
        cfg = Path(d) / "audit.yaml"
        cfg.write_text(yaml.safe_dump(CONFIG))
        res = invoke(["audit", path, "--config", cfg, "--out", out, "--no-report"])
        assert res.exit_code in (0, 2), res.output
        assert "Traceback" not in res.output and "internal error" not in res.output
        assert "\x1b" not in res.output
        if res.exit_code == 2:
            assert not out.exists() or not any(out.iterdir())
        else:
            assert {p.name for p in out.iterdir()} == {"metrics.csv", "disparities.csv",
                                                       "results.json"}
            for name in ("metrics.csv", "disparities.csv"):
                assert_no_formula_cells(out / name)


number = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 5) | st.none()
thresholds = st.fixed_dictionaries({}, optional={
    "rule": st.sampled_from(["fixed", "sensitivity", "specificity", "youden", "bogus"]),
    "value": number, "target": number})
configs = st.fixed_dictionaries(
    {"tasks": st.just([{"name": "t", "label": "y", "score": "p"}]),
     "attributes": st.just({"g": {}})},
    optional={"threshold": thresholds, "ci_level": number, "min_cell_size": number,
              "max_groups": number, "bootstrap": st.integers(-2, 2) | st.none()})


def _finite_numbers(data: Any) -> bool:
    if isinstance(data, dict):
        return all(_finite_numbers(v) for v in data.values())
    return not (isinstance(data, float) and not math.isfinite(data))


@settings(max_examples=60, **SETTINGS)
@given(data=configs)
def test_config_validation_is_total(data: dict[str, Any]) -> None:
    try:
        cfg = parse_config(data)
    except ConfigError as err:
        assert "invalid audit config" in str(err)
        return
    assert _finite_numbers(data)  # a NaN / inf anywhere is never accepted
    th = cfg.threshold
    assert th.value is None or 0.0 <= th.value <= 1.0
    assert not (th.rule == "fixed" and th.target is not None)


@settings(max_examples=4, **SETTINGS)
@given(data=configs)
def test_cli_config_exits_0_or_2(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        frame = pd.DataFrame({"y": [0, 1] * 15, "p": np.linspace(0, 1, 30).round(3),
                              "g": ["a", "b", "c"] * 10})
        frame.to_csv(Path(d) / "preds.csv", index=False)
        cfg = Path(d) / "audit.yaml"
        cfg.write_text(yaml.safe_dump(data))
        res = invoke(["audit", Path(d) / "preds.csv", "--config", cfg, "--out",
                      Path(d) / "o", "--no-report"])
        assert res.exit_code in (0, 2), res.output
        assert "Traceback" not in res.output and "internal error" not in res.output
        if res.exit_code == 2:
            named = ("audit.yaml", "preds.csv", "column '", "`max_groups`")
            assert any(k in res.output for k in named), res.output
