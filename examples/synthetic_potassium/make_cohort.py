"""Regenerate ``cohort.csv``: a SYNTHETIC potassium cohort with a planted group bias.

Not real patients. Measured serum potassium ``k`` (mmol/L) and an "ECG estimate" ``k_hat``
that reads 0.4 mmol/L too high for the group ``Black`` and is unbiased for everyone else
(noise SD 0.35 mmol/L), made by :func:`ecgaudit.datasets.make_synthetic_potassium`.

Run from the repository root: ``python examples/synthetic_potassium/make_cohort.py``.
"""

from __future__ import annotations

from pathlib import Path

from ecgaudit.datasets import make_synthetic_potassium
from ecgaudit.io import atomic_write_text

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    frame = make_synthetic_potassium(4000, seed=2026, group_bias={"Black": 0.4})
    atomic_write_text(HERE / "cohort.csv", frame.to_csv(index=False))
