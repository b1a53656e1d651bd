"""Group-specific operating thresholds as a post-processing mitigation (fairlearn).

:func:`fit_group_thresholds` wraps fairlearn's ``ThresholdOptimizer`` (Hardt et al. 2016) on
fixed scores. The fitted rule is randomised between two thresholds per group and **uses the
protected attribute at decision time**: every result carries
``uses_protected_attribute = True`` and :data:`PROTECTED_ATTRIBUTE_WARNING`, which reports
must show. :func:`threshold_cost` reports what the rule costs in overall sensitivity and
specificity against the single threshold it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fairlearn.postprocessing import ThresholdOptimizer
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin

from ecgaudit.errors import InputError

__all__ = [
    "PROTECTED_ATTRIBUTE_WARNING",
    "GroupThresholds",
    "fit_group_thresholds",
    "threshold_cost",
]

PROTECTED_ATTRIBUTE_WARNING = (
    "Group-specific thresholds use the protected attribute ({attribute}) at decision time: "
    "two patients with the same score can receive different decisions because of their "
    "group, and decisions are randomised between two thresholds per group. Check that this "
    "is lawful and acceptable in your setting before deployment."
)


class _FixedScores(ClassifierMixin, BaseEstimator):
    """A prefit 'estimator' whose prediction is the score column of ``X`` (no training)."""

    def fit(self, X: Any, y: Any = None) -> _FixedScores:
        self.classes_ = np.array([0, 1])
        self.fitted_ = True
        return self

    def predict(self, X: Any) -> NDArray[np.float64]:
        return np.asarray(X, dtype=np.float64)[:, 0]


@dataclass(frozen=True)
class GroupThresholds:
    """A fitted group-threshold rule (JSON-serialisable, applied without fairlearn).

    Attributes
    ----------
    attribute : str
        The protected attribute the rule depends on.
    constraint, objective : str
        fairlearn constraint and objective.
    rules : dict
        ``{group: {"p0", "threshold0", "operator0", "p1", "threshold1", "operator1"}}``:
        with probability ``p0`` predict ``score <op0> threshold0``, else ``score <op1>
        threshold1``.
    uses_protected_attribute : bool
        Always True: the rule needs the group at decision time.
    warning : str
        The text reports must show.
    """

    attribute: str
    constraint: str
    objective: str
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    uses_protected_attribute: bool = True
    warning: str = ""

    def positive_probability(self, scores: ArrayLike, groups: ArrayLike) -> NDArray[np.float64]:
        """Return each row's probability of a positive decision under the rule.

        Raises
        ------
        InputError
            If a row's group has no fitted threshold.
        """
        s = np.asarray(scores, dtype=np.float64).ravel()
        g = np.asarray(groups).astype(str).ravel()
        unseen = sorted(set(g.tolist()) - set(self.rules))
        if unseen:
            raise InputError(
                f"no threshold was fitted for {self.attribute} group(s) {unseen}; "
                f"fitted groups: {sorted(self.rules)}"
            )
        out = np.zeros_like(s)
        for name, r in self.rules.items():
            m = g == name
            d0 = s[m] > r["threshold0"] if r["operator0"] == ">" else s[m] < r["threshold0"]
            d1 = s[m] > r["threshold1"] if r["operator1"] == ">" else s[m] < r["threshold1"]
            out[m] = r["p0"] * d0 + r["p1"] * d1
        return out

    def predict(self, scores: ArrayLike, groups: ArrayLike, seed: int = 0) -> NDArray[np.int8]:
        """Draw 0/1 decisions (seeded, so repeatable)."""
        prob = self.positive_probability(scores, groups)
        rng = np.random.default_rng(seed)
        return (rng.random(prob.shape) < prob).astype(np.int8)

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON data."""
        return {
            "attribute": self.attribute,
            "constraint": self.constraint,
            "objective": self.objective,
            "rules": self.rules,
            "uses_protected_attribute": self.uses_protected_attribute,
            "warning": self.warning,
        }


def fit_group_thresholds(
    scores: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    *,
    attribute: str,
    constraint: str = "true_positive_rate_parity",
    objective: str = "balanced_accuracy_score",
    grid_size: int = 1000,
    min_per_class: int = 1,
) -> GroupThresholds:
    """Fit group-specific thresholds with fairlearn's ``ThresholdOptimizer``.

    Parameters
    ----------
    scores : array_like
        Model probabilities on the site's fine-tuning rows.
    labels : array_like
        Binary labels.
    groups : array_like
        The protected attribute's group per row.
    attribute : str
        Its name (for messages and the warning).
    constraint, objective : str
        Passed to ``ThresholdOptimizer``.
    grid_size : int
        Threshold grid size.
    min_per_class : int
        Every group needs this many positives and negatives.

    Returns
    -------
    GroupThresholds

    Raises
    ------
    InputError
        If a group lacks positives or negatives.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(int).ravel()
    g = np.asarray(groups).astype(str).ravel()
    short = []
    for name in sorted(set(g.tolist())):
        yy = y[g == name]
        if yy.sum() < min_per_class or (len(yy) - yy.sum()) < min_per_class:
            short.append(f"{name} ({int(yy.sum())} positive, {int(len(yy) - yy.sum())} negative)")
    if short:
        raise InputError(
            f"group thresholds for '{attribute}' need at least {min_per_class} positive and "
            f"negative fine-tuning rows per group; short: {', '.join(short)}. Use a coarser "
            "attribute or more site data."
        )
    est = _FixedScores().fit(s[:, None], y)
    opt = ThresholdOptimizer(estimator=est, constraints=constraint, objective=objective,
                             grid_size=grid_size, prefit=True, predict_method="predict")
    opt.fit(s[:, None], y, sensitive_features=g)
    rules: dict[str, dict[str, Any]] = {}
    for name, interp in opt.interpolated_thresholder_.interpolation_dict.items():
        if "p_ignore" in interp and float(interp["p_ignore"]) > 0:
            raise InputError(  # pragma: no cover - only equalized-odds mixing produces this
                f"constraint '{constraint}' produced a randomised constant prediction for "
                f"group {name}; use true_positive_rate_parity"
            )
        rules[str(name)] = {
            "p0": float(interp["p0"]),
            "threshold0": float(interp["operation0"].threshold),
            "operator0": str(interp["operation0"].operator),
            "p1": float(interp["p1"]),
            "threshold1": float(interp["operation1"].threshold),
            "operator1": str(interp["operation1"].operator),
        }
    return GroupThresholds(
        attribute=attribute, constraint=constraint, objective=objective, rules=rules,
        warning=PROTECTED_ATTRIBUTE_WARNING.format(attribute=attribute),
    )


def _rates(decision: NDArray[np.float64], y: NDArray[np.int_]) -> tuple[float, float]:
    pos, neg = y == 1, y == 0
    sens = float(decision[pos].mean()) if pos.any() else float("nan")
    spec = float(1.0 - decision[neg].mean()) if neg.any() else float("nan")
    return sens, spec


def threshold_cost(
    scores: ArrayLike,
    labels: ArrayLike,
    groups: ArrayLike,
    rule: GroupThresholds,
    single_threshold: float,
) -> dict[str, Any]:
    """Compare the group rule with one shared threshold on held-out rows.

    Expected rates under the randomised rule are used (no sampling noise).

    Parameters
    ----------
    scores, labels, groups : array_like
        Held-out rows.
    rule : GroupThresholds
        The fitted rule.
    single_threshold : float
        The shared threshold it replaces.

    Returns
    -------
    dict
        ``overall`` and ``groups`` entries, each with sensitivity and specificity ``before``
        (single threshold) and ``after`` (group rule), plus ``cost`` (after - before overall).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(int).ravel()
    g = np.asarray(groups).astype(str).ravel()
    before = (s >= single_threshold).astype(np.float64)
    after = rule.positive_probability(s, g)
    out: dict[str, Any] = {"single_threshold": float(single_threshold), "groups": {}}
    for key, mask in [("overall", np.ones_like(y, dtype=bool))] + [
        (name, g == name) for name in sorted(set(g.tolist()))
    ]:
        sb, pb = _rates(before[mask], y[mask])
        sa, pa = _rates(after[mask], y[mask])
        entry = {"n": int(mask.sum()), "n_pos": int(y[mask].sum()),
                 "sensitivity_before": sb, "specificity_before": pb,
                 "sensitivity_after": sa, "specificity_after": pa}
        if key == "overall":
            out["overall"] = entry
        else:
            out["groups"][key] = entry
    o = out["overall"]
    out["cost"] = {
        "sensitivity": o["sensitivity_after"] - o["sensitivity_before"],
        "specificity": o["specificity_after"] - o["specificity_before"],
    }
    out["uses_protected_attribute"] = True
    out["warning"] = rule.warning
    return out
