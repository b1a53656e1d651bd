"""Build ``whas500_scored.csv``: a Cox model fitted on a development split of WHAS500.

Data: the Worcester Heart Attack Study (WHAS500; Hosmer, Lemeshow & May, *Applied Survival
Analysis*, 2nd ed., Wiley 2008), as shipped by scikit-survival (``load_whas500``). A Cox
proportional-hazards model on every covariate except sex is fitted on a random half of the
patients (seed 15); the other half is scored and written with its follow-up, sex and age, to
be audited by sex and age band. Run from the repository root::

    python examples/survival_whas500/make_data.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sksurv.datasets import load_whas500
from sksurv.linear_model import CoxPHSurvivalAnalysis

OUT = Path(__file__).with_name("whas500_scored.csv")


def main() -> None:
    X, y = load_whas500()
    X = X.astype(float)
    rng = np.random.default_rng(15)
    dev = np.zeros(len(X), bool)
    dev[rng.permutation(len(X))[: len(X) // 2]] = True
    features = [c for c in X.columns if c != "gender"]
    cox = CoxPHSurvivalAnalysis(alpha=0.1).fit(X.loc[dev, features], y[dev])
    test = X.loc[~dev]
    risk = cox.predict(test[features])
    surv = cox.predict_survival_function(test[features])
    p1y = np.array([1.0 - fn(365.0) for fn in surv])
    out = pd.DataFrame({
        "patient": np.flatnonzero(~dev) + 1,
        "lenfol_days": y["lenfol"][~dev],
        "died": y["fstat"][~dev].astype(int),
        "cox_risk": np.round(risk, 6),
        "p_death_1y": np.round(p1y, 6),
        "sex": np.where(test["gender"].to_numpy() == 1, "female", "male"),
        "age": test["age"].to_numpy(),
    })
    out.to_csv(OUT, index=False)
    print(f"wrote {OUT} ({len(out)} patients, {int(out.died.sum())} deaths)")


if __name__ == "__main__":
    main()
