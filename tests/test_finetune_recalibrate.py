"""Recalibration checked against statsmodels, scikit-learn, closed-form optimality and simulation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from ecgaudit.errors import InputError
from ecgaudit.finetune import Recalibrator, apply_recalibration, recalibrate


def _miscalibrated(
    n: int, seed: int, offset: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True risk p, labels y ~ Bernoulli(p), and an overconfident, shifted score."""
    rng = np.random.default_rng(seed)
    z = rng.normal(-1.0, 1.2, size=n)
    p = expit(z)
    y = (rng.random(n) < p).astype(int)
    score = expit(2.0 * z + offset)  # map back: logit(p) = 0.5 * logit(score) - offset / 2
    return p, y, score


def test_platt_matches_statsmodels_unpenalised_logit() -> None:
    _, y, s = _miscalibrated(3000, 1)
    r = recalibrate(s, y, "platt")
    z = logit(np.clip(s, 1e-6, 1 - 1e-6))
    fit = sm.Logit(y, sm.add_constant(z)).fit(disp=0, tol=1e-12)
    assert r.params["b"] == pytest.approx(fit.params[0], abs=1e-5)
    assert r.params["a"] == pytest.approx(fit.params[1], abs=1e-5)
    assert r.transform(s) == pytest.approx(fit.predict(sm.add_constant(z)), abs=1e-6)


def test_platt_recovers_planted_map_by_simulation() -> None:
    _, y, s = _miscalibrated(40000, 2)
    r = recalibrate(s, y, "platt")
    assert r.params["a"] == pytest.approx(0.5, abs=0.03)
    assert r.params["b"] == pytest.approx(-0.5, abs=0.05)


def test_temperature_satisfies_first_order_condition() -> None:
    _, y, s = _miscalibrated(3000, 3)
    r = recalibrate(s, y, "temperature")
    t = r.params["temperature"]
    z = logit(np.clip(s, 1e-6, 1 - 1e-6))
    # d/dT of the log-likelihood is proportional to sum((y - sigmoid(z/T)) * z)
    grad = np.sum((y - expit(z / t)) * z) / len(z)
    assert abs(grad) < 1e-4

    def nll(temp: float) -> float:
        q = expit(z / temp)
        return float(-np.sum(y * np.log(q) + (1 - y) * np.log(1 - q)))

    assert nll(t) <= nll(t * 1.01) and nll(t) <= nll(t / 1.01)
    assert t > 1.0  # overconfident scores need T > 1


def test_isotonic_equals_sklearn() -> None:
    _, y, s = _miscalibrated(2000, 4)
    r = recalibrate(s, y, "isotonic")
    ref = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(s, y)
    new = np.random.default_rng(5).random(500)
    assert r.transform(new) == pytest.approx(ref.predict(new), abs=1e-12)


@pytest.mark.parametrize("method", ["platt", "temperature"])
def test_monotone_maps_keep_auroc_and_improve_calibration(method: str) -> None:
    offset = 1.0 if method == "platt" else 0.0  # temperature has no intercept to fix a shift
    _, y_fit, s_fit = _miscalibrated(5000, 6, offset)
    p, y, s = _miscalibrated(5000, 7, offset)
    r = recalibrate(s_fit, y_fit, method)
    out = r.transform(s)
    assert roc_auc_score(y, out) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    # held-out: closer to the true risk than the raw score
    assert np.mean(np.abs(out - p)) < 0.5 * np.mean(np.abs(s - p))


@pytest.mark.parametrize("method", ["platt", "temperature", "isotonic"])
def test_json_round_trip_is_exact(method: str) -> None:
    _, y, s = _miscalibrated(800, 8)
    r = recalibrate(s, y, method)
    back = Recalibrator.from_dict(json.loads(r.to_json()))
    assert np.array_equal(back.transform(s), r.transform(s))
    assert back.n == 800 and back.n_pos == int(y.sum())
    assert r.to_json() == recalibrate(s, y, method).to_json()


def test_saturated_scores_are_handled() -> None:
    _, y, s = _miscalibrated(1000, 9)
    s = s.copy()
    s[:20] = 1.0
    s[20:40] = 0.0
    out = recalibrate(s, y, "platt").transform(s)
    assert np.all(np.isfinite(out)) and np.all((out > 0) & (out < 1))


def test_errors_are_clear() -> None:
    with pytest.raises(InputError, match=r"at least 5 positive .* found 2 positive"):
        recalibrate([0.1, 0.9, 0.8, 0.2, 0.3], [0, 1, 1, 0, 0], "platt", min_events=5)
    with pytest.raises(InputError, match="NaN"):
        recalibrate([0.1, np.nan], [0, 1])
    with pytest.raises(InputError, match="probabilities in"):
        recalibrate([0.1, 2.5], [0, 1])
    with pytest.raises(InputError, match="same length"):
        recalibrate([0.1, 0.5, 0.7], [0, 1])
    with pytest.raises(InputError, match="0/1"):
        recalibrate([0.1, 0.5], [0, 2])
    with pytest.raises(InputError, match="unknown recalibration method"):
        recalibrate([0.1, 0.5], [0, 1], "beta")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="missing parameters"):
        Recalibrator.from_dict({"method": "platt", "params": {"a": 1.0}})


def test_apply_recalibration_from_postprocess_json() -> None:
    _, y, s = _miscalibrated(1000, 10)
    r = recalibrate(s, y, "platt")
    post = json.loads(json.dumps({"recalibration": {"hf": r.to_dict()}}))
    out = apply_recalibration({"hf": s, "af": s}, post)
    assert np.array_equal(out["hf"], r.transform(s))
    assert np.array_equal(out["af"], s)
