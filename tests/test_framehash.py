"""frame_row_hashes equals pandas' hash_pandas_object(frame, index=False) bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgaudit.pipeline._framehash import frame_row_hashes


def _mixed(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "id": [f"ecg{i}" for i in range(n)],
        "p": rng.random(n),
        "y": rng.integers(0, 2, n).astype(np.int8),
        "age": rng.integers(18, 90, n),
        "sex": pd.Categorical(rng.choice(["F", "M"], n)),
        "flag": rng.random(n) < 0.5,
        "f32": np.where(rng.random(n) < 0.3, -0.0, rng.random(n)).astype(np.float32),
        "u16": rng.integers(0, 60000, n).astype(np.uint16),
        "neg": np.where(rng.random(n) < 0.5, -0.0, np.copysign(np.nan, -1.0)),
        "i32": rng.integers(-5, 5, n).astype(np.int32),
        "obj": pd.Series(rng.choice(["a", None, "b"], n), dtype=object),
        "text": pd.Series(rng.choice(["x", "y", None], n), dtype="string"),
        "nan": np.where(rng.random(n) < 0.2, np.nan, 1.5),
    }, index=np.arange(n)[::-1] * 3)
    frame["dup"] = frame["p"]
    return frame


@pytest.mark.parametrize("n", [0, 1, 257, 5000])
def test_equals_hash_pandas_object(n: int) -> None:
    frame = _mixed(n)
    want = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    np.testing.assert_array_equal(frame_row_hashes(frame), want)


def test_column_order_and_duplicate_names_matter() -> None:
    frame = _mixed(100)
    swapped = frame[list(frame.columns[::-1])]
    assert not np.array_equal(frame_row_hashes(swapped), frame_row_hashes(frame))
    dup = pd.concat([frame[["p"]], frame[["p"]]], axis=1)  # two columns named "p"
    np.testing.assert_array_equal(frame_row_hashes(dup),
                                  pd.util.hash_pandas_object(dup, index=False).to_numpy())


def test_no_columns() -> None:
    frame = pd.DataFrame(index=range(4))
    np.testing.assert_array_equal(frame_row_hashes(frame),
                                  pd.util.hash_pandas_object(frame, index=False).to_numpy())
