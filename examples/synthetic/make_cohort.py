"""Generate the SYNTHETIC race/sex/age cohort shipped in this folder.

Public ECG data has no race or ethnicity, so this cohort is simulated with
``ecgaudit.datasets.make_synthetic_cohort`` and known, planted disparities:

* task ``hf`` (incident heart failure, simulated): lower discrimination for Black patients
  (binormal separation 1.0 vs 1.8: true AUROC 0.760 vs 0.898);
* task ``lowef`` (low ejection fraction, simulated): scores shifted up by +0.8 logit for
  women (miscalibration and a higher flag rate, same ranking).

Run ``python examples/synthetic/make_cohort.py`` to regenerate ``cohort.csv`` exactly.
"""

from __future__ import annotations

from pathlib import Path

from ecgaudit.datasets import make_synthetic_cohort

HERE = Path(__file__).resolve().parent


def main() -> None:
    hf = make_synthetic_cohort(6000, seed=2024, tasks=("hf",), prevalence=0.15,
                               group_separation={"Black": 1.0}, ecgs_per_patient=1.3)
    ef = make_synthetic_cohort(6000, seed=2024, tasks=("lowef",), prevalence=0.10,
                               group_shift={"female": 0.8}, ecgs_per_patient=1.3)
    frame = hf.frame.assign(y_lowef=ef.frame["y_lowef"], p_lowef=ef.frame["p_lowef"])
    frame = frame.round({"p_hf": 6, "p_lowef": 6})
    frame.to_csv(HERE / "cohort.csv", index=False)


if __name__ == "__main__":
    main()
