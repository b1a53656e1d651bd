"""Crosswalk from report sections to TRIPOD+AI 2024 checklist items.

Collins GS et al. TRIPOD+AI statement: updated guidance for reporting clinical prediction
models that use regression or machine learning methods. BMJ 2024;385:e078378.
The report supports these items; it does not by itself complete the checklist (title,
abstract, ethics, funding and the discussion are the authors' to write).
"""

from __future__ import annotations

from typing import Final

#: ``(section id, section title, [(item, what the item asks)], how the report helps)``.
CROSSWALK: Final[tuple[tuple[str, str, tuple[tuple[str, str], ...], str], ...]] = (
    ("summary", "1. Summary", (
        ("23a", "performance estimates with confidence intervals, including key subgroups"),
        ("25", "overall interpretation of the main results, including fairness issues"),
    ), "Headline AUROC overall and in the worst group, generated findings."),
    ("context", "2. Intended use and context", (
        ("3b", "target population and intended purpose, intended users"),
        ("3c", "known health inequalities between sociodemographic groups"),
        ("5a", "sources of data"),
    ), "Free text from the audit configuration, shown only when given."),
    ("cohort", "3. Cohort composition", (
        ("20b", "characteristics overall: sample size, outcome events, missing data"),
        ("20c", "comparison of the distribution of important predictors and demographics"),
        ("11", "how missing data were handled (Unknown groups)"),
    ), "Counts, shares and prevalence by group; Unknown shown as a group; target population."),
    ("methods", "4. Methods", (
        ("12e", "all performance measures and plots used, and their rationale"),
        ("14", "approaches used to address model fairness, and their rationale"),
        ("15", "model output, classification thresholds and how they were identified"),
        ("12a", "how the data were used in the analysis"),
    ), "Metrics, interval methods, threshold rule, reference groups, multiplicity, privacy."),
    ("performance", "5. Subgroup performance", (
        ("23a", "performance estimates with confidence intervals for key subgroups; plots"),
        ("23b", "heterogeneity of performance across clusters (e.g. sites)"),
        ("21", "number of participants and outcome events in each analysis"),
    ), "Forest plots and tables of discrimination and threshold metrics per group."),
    ("calibration", "6. Calibration by group", (
        ("12e", "calibration measures and plots"),
        ("23a", "calibration with confidence intervals per subgroup"),
    ), "Reliability curves and calibration slope, intercept, O/E, ECE, Brier by group."),
    ("disparities", "7. Disparities", (
        ("14", "model fairness: differences between groups"),
        ("23a", "subgroup performance with confidence intervals"),
    ), "Differences and ratios versus reference, adjusted p-values, heat map, policy results."),
    ("limitations", "8. Limitations", (
        ("26", "limitations: non-representative sample, sample size, missing data"),
        ("27a", "how poor quality or unavailable input data should be handled"),
    ), "Generated from the data: small groups, missing demographics, interval assumptions."),
    ("reproducibility", "9. Reproducibility", (
        ("18e", "availability of the study data"),
        ("18f", "availability of the analytical code"),
        ("7", "data preparation"),
    ), "Resolved configuration, input hashes, seed and software versions."),
)
