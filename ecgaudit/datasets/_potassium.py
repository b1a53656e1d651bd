"""Seeded synthetic potassium cohort with a planted group bias (clearly synthetic).

Measured serum potassium ``k ~ N(4.4, 0.6)`` mmol/L (plus a right tail of hyperkalaemia);
the "ECG estimate" is ``k_hat = k + bias_g + N(0, noise)``, so the true bias of group ``g``
is ``bias_g`` exactly and its true MAE is ``E|N(bias_g, noise)|`` (:func:`true_mae`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import norm

from ecgaudit.datasets._synthetic import RACE_SHARES, RACES, SEXES

__all__ = ["make_synthetic_potassium", "true_mae"]


def true_mae(bias: float, noise: float) -> float:
    """Mean of ``|N(bias, noise^2)|`` (the folded normal mean)."""
    return float(noise * math.sqrt(2.0 / math.pi) * math.exp(-bias**2 / (2 * noise**2))
                 + bias * (1.0 - 2.0 * norm.cdf(-bias / noise)))


def make_synthetic_potassium(n: int = 4000, seed: int = 0, *, noise: float = 0.35,
                             group_bias: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Return a synthetic potassium cohort (one ECG per patient).

    Parameters
    ----------
    n : int
        Rows.
    seed : int
        Seed.
    noise : float
        SD of the estimate's error around the group bias (mmol/L).
    group_bias : mapping, optional
        Planted bias (predicted - measured, mmol/L) per race group; default
        ``{"Black": 0.4}``.

    Returns
    -------
    pandas.DataFrame
        Columns ``ecg_id, patient_id, race, sex, age, k, k_hat``.
    """
    bias = {"Black": 0.4} if group_bias is None else dict(group_bias)
    rng = np.random.default_rng(seed)
    race = rng.choice(RACES, size=n, p=RACE_SHARES)
    sex = rng.choice(SEXES, size=n)
    age = np.clip(rng.normal(62, 14, n), 18, 99).round(0)
    k = rng.normal(4.4, 0.6, n) + rng.exponential(0.3, n) * (rng.random(n) < 0.15)
    shift = np.array([bias.get(str(r), 0.0) for r in race])
    k_hat = k + shift + rng.normal(0.0, noise, n)
    return pd.DataFrame({
        "ecg_id": np.arange(1, n + 1), "patient_id": np.arange(1, n + 1), "race": race,
        "sex": sex, "age": age, "k": k.round(3), "k_hat": k_hat.round(3),
    })
