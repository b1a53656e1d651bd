"""Seeded synthetic cohort generator with planted group effects.

Scores follow a binormal model on the logit scale: for a patient in group ``g``,
``logit(score) ~ N(shift_g + (d_g / 2) * (2y - 1), 1)``, so the true within-group AUROC is
``Phi(d_g / sqrt(2))`` (:func:`binormal_auroc`). ``shift_g`` moves a group's scores without
changing its ranking (a calibration / threshold disparity).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

RACES: tuple[str, ...] = ("White", "Black", "Asian", "Hispanic", "Other")
RACE_SHARES: tuple[float, ...] = (0.60, 0.15, 0.08, 0.12, 0.05)
SEXES: tuple[str, ...] = ("female", "male")


def binormal_auroc(d: float) -> float:
    """Return the AUROC of a binormal model with unit variances and separation ``d``.

    Parameters
    ----------
    d : float
        Difference of the class means in standard deviations.

    Returns
    -------
    float
        ``Phi(d / sqrt(2))``.
    """
    return float(norm.cdf(d / np.sqrt(2.0)))


@dataclass(frozen=True)
class SyntheticCohort:
    """A synthetic cohort and its ground truth.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns ``ecg_id, patient_id, race, sex, age, y_<task>, p_<task>``.
    true_auroc : dict
        ``{(task, attribute, group): AUROC}`` for the single attributes race and sex.
    """

    frame: pd.DataFrame
    true_auroc: dict[tuple[str, str, str], float] = field(default_factory=dict)


def make_synthetic_cohort(
    n: int = 5000,
    *,
    seed: int = 0,
    tasks: Sequence[str] = ("hf",),
    prevalence: float = 0.2,
    separation: float = 1.8,
    group_separation: Mapping[str, float] | None = None,
    group_shift: Mapping[str, float] | None = None,
    race_shares: Sequence[float] = RACE_SHARES,
    ecgs_per_patient: float = 1.0,
    missing_race: float = 0.02,
) -> SyntheticCohort:
    """Generate a seeded synthetic cohort with planted race/sex disparities.

    Parameters
    ----------
    n : int
        Number of ECGs.
    seed : int
        Random seed (same seed, same cohort).
    tasks : sequence of str
        Task names; each gets columns ``y_<task>`` and ``p_<task>``.
    prevalence : float
        Outcome prevalence.
    separation : float
        Binormal separation ``d`` for every group not listed in ``group_separation``.
    group_separation : mapping, optional
        Separation per group value, e.g. ``{"Black": 1.0}`` plants a lower AUROC for that
        race (keys may be race or sex values; race takes precedence).
    group_shift : mapping, optional
        Logit shift per group value (miscalibration without ranking change).
    race_shares : sequence of float
        Shares of :data:`RACES`.
    ecgs_per_patient : float
        Mean ECGs per patient (>= 1); extra ECGs of one patient share its latent severity,
        making rows within a patient correlated.
    missing_race : float
        Share of rows with race not recorded (becomes the ``Unknown`` group).

    Returns
    -------
    SyntheticCohort
    """
    rng = np.random.default_rng(seed)
    sep = dict(group_separation or {})
    shift = dict(group_shift or {})
    n_patients = max(1, round(n / max(ecgs_per_patient, 1.0)))
    p_race = np.asarray(race_shares, dtype=float) / np.sum(race_shares)
    pat_race = rng.choice(len(RACES), size=n_patients, p=p_race)
    pat_sex = rng.integers(0, 2, size=n_patients)
    pat_age = np.clip(rng.normal(62, 15, size=n_patients), 18, 99)
    patient = np.sort(rng.integers(0, n_patients, size=n))
    patient[:n_patients] = np.arange(min(n, n_patients))
    patient = np.sort(patient)
    race = np.array(RACES, dtype=object)[pat_race[patient]]
    sex = np.array(SEXES, dtype=object)[pat_sex[patient]]
    age = np.round(pat_age[patient] + rng.uniform(0, 2, size=n), 0)
    data: dict[str, object] = {
        "ecg_id": np.arange(1, n + 1),
        "patient_id": patient + 1000,
        "sex": sex,
        "age": age,
    }
    truth: dict[tuple[str, str, str], float] = {}
    for task in tasks:
        latent = rng.normal(size=n_patients)
        pat_y = (latent > norm.ppf(1 - prevalence)).astype(np.int8)
        y = pat_y[patient]
        d = np.array([sep.get(r, sep.get(s, separation)) for r, s in zip(race, sex)])
        off = np.array([shift.get(r, shift.get(s, 0.0)) for r, s in zip(race, sex)])
        pat_noise = rng.normal(size=n_patients)[patient]
        rho = 0.0 if ecgs_per_patient <= 1.0 else 0.7
        noise = np.sqrt(rho) * pat_noise + np.sqrt(1 - rho) * rng.normal(size=n)
        base = np.log(prevalence / (1 - prevalence))
        z = base + off + (d / 2.0) * (2 * y - 1) + noise
        data[f"y_{task}"] = y
        data[f"p_{task}"] = expit(z)
        for r in RACES:
            if not any(s in sep for s in SEXES):
                truth[(task, "race", r)] = binormal_auroc(sep.get(r, separation))
        for s in SEXES:
            if not any(r in sep for r in RACES):
                truth[(task, "sex", s)] = binormal_auroc(sep.get(s, separation))
    race_col = race.copy()
    race_col[rng.random(n) < missing_race] = None
    data["race"] = race_col
    frame = pd.DataFrame(data)
    cols = ["ecg_id", "patient_id", "race", "sex", "age"] + [
        c for t in tasks for c in (f"y_{t}", f"p_{t}")
    ]
    return SyntheticCohort(frame=frame.loc[:, cols], true_auroc=truth)
