"""Rendering column values once per distinct value gives the row-by-row result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecgaudit.validate._checks import _stripped_text


@pytest.mark.parametrize("values", [
    pd.Series([1.0, -0.0, 0.0, np.nan, 63.5, 63.5]),
    pd.Series([" 40 ", None, 7, 7.0, "x", np.nan, True, 1]),
    pd.Series([3, 4, 3], dtype=np.int64),
    pd.Series(["a", pd.NA, " b"], dtype="string"),
    pd.Series([" 4", None, "x ", " 4"]),
    pd.Series([1, None], dtype="Int64"),
    pd.Series(["a", "b", None], dtype="category"),
])
def test_stripped_text_equals_row_by_row_rendering(values: pd.Series) -> None:
    reference = [("" if pd.isna(v) else str(v).strip()) for v in values]
    assert _stripped_text(values).tolist() == reference
