"""Declarations of the binary-outcome metrics (report order) and the ranking metrics."""

from __future__ import annotations

from ecgaudit.registry import _references as ref
from ecgaudit.registry._spec import Direction, MetricSpec

__all__ = ["BINARY_SPECS"]

#: Bootstrap interval names (``-clustered`` is appended with a patient column). Metrics
#: with a closed-form interval keep it with the bootstrap; AUPRC's ``wilson-ap`` is the
#: fallback (suffix ``-fallback``) when its bootstrap interval collapses.
BOOT = ("bootstrap-percentile", "bootstrap-bca")
_BOTH = ("positives", "negatives")
_CAL_NEEDS = "positives, negatives and more than one distinct score (no separation)"


def _rate(name: str, label: str, short: str, definition: str, direction: Direction,
          needs: str, text: str, reference: str) -> MetricSpec:
    """Declare a threshold rate: a proportion of a count, Wilson CI, Newcombe disparity."""
    return MetricSpec(
        name, "binary", label, short, definition, direction,
        needs=(needs, "threshold"), needs_text=text, intervals=("wilson",),
        disparity_test="newcombe-inverted", family="rate", bounded=True,
        reference=ref.binary_rate(name), reference_name=reference)


def _ranking(name: str, label: str, definition: str) -> MetricSpec:
    """Declare a ranking cross-AUC of one group (``ranking`` table, bootstrap CI)."""
    return MetricSpec(
        name, "binary", label, label, definition, "higher",
        needs=("positives", "negatives", "group", "reference"),
        needs_text="positives and negatives on both sides of the comparison",
        intervals=BOOT, disparity_test="none", family="ranking", bounded=True, rule=False,
        table="ranking", reference=ref.ranking_reference(name),
        reference_name="sklearn.metrics.roc_auc_score on the pooled comparison sets")


BINARY_SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "auroc", "binary", "AUROC", "AUROC",
        "area under the ROC curve: how well scores rank patients with the condition above "
        "those without (0.5 = chance, 1 = perfect); threshold-free",
        "higher", needs=(*_BOTH, "distinct_scores"), needs_text="positives and negatives",
        intervals=("newcombe-score",), disparity_test="mover-score-inverted",
        family="rank", bounded=True, reference=ref.auroc,
        reference_name="sklearn.metrics.roc_auc_score"),
    MetricSpec(
        "auprc", "binary", "AUPRC", "AUPRC",
        "area under the precision-recall curve (average precision); depends on prevalence",
        "higher", needs=(*_BOTH, "distinct_scores"), needs_text="positives and negatives",
        intervals=(*BOOT, "wilson-ap"), disparity_test="bootstrap", family="rank",
        bounded=True, reference=ref.auprc,
        reference_name="sklearn.metrics.average_precision_score"),
    MetricSpec(
        "brier", "binary", "Brier score", "Brier",
        "mean squared difference between predicted probability and outcome (lower is better)",
        "lower", needs=("rows",), needs_text="rows", intervals=BOOT,
        disparity_test="bootstrap", family="calibration", bounded=True, reference=ref.brier,
        reference_name="sklearn.metrics.brier_score_loss"),
    MetricSpec(
        "oe_ratio", "binary", "O/E ratio", "O/E",
        "observed events divided by expected (sum of predicted probabilities); "
        "1 = calibrated in the large",
        "target", target=1.0, needs=("rows", "expected_events"),
        needs_text="a positive sum of scores", intervals=("poisson-exact",),
        disparity_test="mover-poisson-inverted", family="calibration",
        reference=ref.oe_ratio, reference_name="closed form sum(y) / sum(p)"),
    MetricSpec(
        "cal_intercept", "binary", "Calibration intercept", "Cal. intercept",
        "intercept a of the logistic recalibration model "
        "logit P(y=1) = a + b logit(p), fitted jointly with b (0 is ideal)",
        "target", target=0.0, needs=(*_BOTH, "distinct_scores"), needs_text=_CAL_NEEDS,
        intervals=BOOT, disparity_test="bootstrap", family="calibration",
        reference=ref.cal_intercept, reference_name="statsmodels Logit on logit(p)"),
    MetricSpec(
        "cal_slope", "binary", "Calibration slope", "Cal. slope",
        "slope b of the same model (1 is ideal; < 1 means over-confident scores)",
        "target", target=1.0, needs=(*_BOTH, "distinct_scores"), needs_text=_CAL_NEEDS,
        intervals=BOOT, disparity_test="bootstrap", family="calibration",
        reference=ref.cal_slope, reference_name="statsmodels Logit on logit(p)"),
    MetricSpec(
        "ece", "binary", "ECE", "ECE",
        "expected calibration error over 10 equal-mass bins of the score",
        "lower", needs=("rows",), needs_text="rows", intervals=BOOT,
        disparity_test="bootstrap", family="calibration", bounded=True, reference=ref.ece,
        reference_name="closed form over numpy.array_split equal-mass bins"),
    _rate("sensitivity", "Sensitivity", "Sensitivity",
          "share of patients with the condition that the model flags", "higher",
          "positives", "positives", "sklearn.metrics.confusion_matrix: tp / (tp + fn)"),
    _rate("specificity", "Specificity", "Specificity",
          "share of patients without the condition that the model does not flag", "higher",
          "negatives", "negatives", "sklearn.metrics.confusion_matrix: tn / (tn + fp)"),
    _rate("ppv", "PPV", "PPV",
          "positive predictive value: share of flagged patients who have the condition",
          "higher", "flagged", "flagged rows", "sklearn.metrics.confusion_matrix: tp / (tp + fp)"),
    _rate("npv", "NPV", "NPV",
          "negative predictive value: share of unflagged patients without the condition",
          "higher", "unflagged", "unflagged rows",
          "sklearn.metrics.confusion_matrix: tn / (tn + fn)"),
    _rate("fnr", "False-negative rate", "FNR",
          "false-negative rate = 1 - sensitivity (missed cases)", "lower", "positives",
          "positives", "sklearn.metrics.confusion_matrix: fn / (fn + tp)"),
    _rate("fpr", "False-positive rate", "FPR",
          "false-positive rate = 1 - specificity (false alarms)", "lower", "negatives",
          "negatives", "sklearn.metrics.confusion_matrix: fp / (fp + tn)"),
    _rate("flag_rate", "Flag rate", "Flag rate",
          "share of all patients the model flags at the operating threshold", "none", "rows",
          "rows", "sklearn.metrics.confusion_matrix: (tp + fp) / n"),
    _ranking("bpsn_auc", "BPSN AUC",
             "background-positive, subgroup-negative AUC (Borkan et al. 2019): low when the "
             "group's negatives score high"),
    _ranking("bnsp_auc", "BNSP AUC",
             "background-negative, subgroup-positive AUC: low when the group's positives "
             "score low"),
    _ranking("xauc_group_vs_ref", "xAUC (group vs reference)",
             "cross-group AUC (Kallus & Zhou 2019): the group's positives vs the reference "
             "group's negatives"),
    _ranking("xauc_ref_vs_group", "xAUC (reference vs group)",
             "cross-group AUC: the reference group's positives vs the group's negatives"),
)
