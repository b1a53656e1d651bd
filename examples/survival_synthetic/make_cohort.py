"""Generate the SYNTHETIC ECG-like time-to-event cohort shipped in this folder.

Everything here is simulated (no real patients): an "ECG-AI" score for incident atrial
fibrillation, with follow-up in days. The true log-hazard is ``0.9 x`` for a latent ECG
risk ``x ~ N(0, 1)``; Weibull event times (shape 1.3) and uniform censoring (1-6 years).
The model sees ``x`` with noise, and two disparities are planted:

* **discrimination**: for Black patients the model's noise SD is 1.5 (0.35 for everyone
  else), so its C-index and time-dependent AUROC are lower for them;
* **calibration**: the predicted 1-year probability is shifted down by 0.9 on the logit
  scale for women (risk under-predicted: observed / expected above 1), same ranking.

Run ``python examples/survival_synthetic/make_cohort.py`` to regenerate ``cohort.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit

HERE = Path(__file__).resolve().parent
SHAPE, SCALE_DAYS, BETA = 1.3, 2500.0, 0.9


def one_year_risk(lp: np.ndarray) -> np.ndarray:
    """True probability of AF by day 365 given the log-hazard ``lp``."""
    return 1.0 - np.exp(-((365.0 / SCALE_DAYS) ** SHAPE) * np.exp(lp))


def main(n: int = 3000, seed: int = 15) -> None:
    rng = np.random.default_rng(seed)
    race = rng.choice(["White", "Black", "Asian", "Hispanic"], n, p=[0.55, 0.2, 0.1, 0.15])
    sex = rng.choice(["female", "male"], n)
    age = np.clip(rng.normal(62, 12, n), 25, 95).round()
    x = rng.normal(size=n)
    lp = BETA * x
    t_event = SCALE_DAYS * rng.weibull(SHAPE, n) * np.exp(-lp / SHAPE)
    t_cens = rng.uniform(365, 6 * 365, n)
    noise = np.where(race == "Black", 1.5, 0.35)
    x_hat = x + rng.normal(size=n) * noise
    lp_hat = BETA * x_hat / np.sqrt(1 + noise**2)
    p1 = expit(logit(one_year_risk(lp_hat)) - np.where(sex == "female", 0.9, 0.0))
    pd.DataFrame({
        "patient": np.arange(1, n + 1),
        "followup_days": np.round(np.minimum(t_event, t_cens), 1),
        "af": (t_event <= t_cens).astype(int),
        "ecg_risk": np.round(lp_hat, 6),
        "p_af_1y": np.round(p1, 6),
        "race": race, "sex": sex, "age": age,
    }).to_csv(HERE / "cohort.csv", index=False)


if __name__ == "__main__":
    main()
