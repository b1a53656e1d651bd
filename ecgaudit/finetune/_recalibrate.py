"""Recalibration on site data: Platt, temperature and isotonic, stored as JSON (no pickle).

Works on scores alone, so a predictions table with no model can be recalibrated. Platt and
temperature scaling are strictly increasing maps of the score, so they leave every group's
AUROC unchanged and only move calibration and thresholded rates; isotonic regression is
non-decreasing (it can create ties).

The maps themselves are applied by :func:`ecgaudit.models.recalibration_map`, the same code
``ecgaudit predict`` runs on a model whose config carries the fitted maps in its
``postprocess`` section (what ``ecgaudit finetune --strategy recalibrate`` exports).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression

from ecgaudit.errors import InputError
from ecgaudit.models import EPS, RECALIBRATION_METHODS, clipped_logit, recalibration_map

__all__ = ["METHODS", "Recalibrator", "apply_recalibration", "recalibrate"]

Method = Literal["platt", "temperature", "isotonic"]
METHODS: tuple[str, ...] = RECALIBRATION_METHODS

ERR_TOO_FEW = (
    "recalibration ({method}) needs at least {need} positive and {need} negative site "
    "labels; found {pos} positive and {neg} negative. Use more site data or fewer tasks."
)


def _as_scores(scores: ArrayLike, name: str = "scores") -> NDArray[np.float64]:
    arr = np.asarray(scores, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contain NaN or infinite values; recalibration needs numbers")
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise InputError(
            f"{name} must be probabilities in [0, 1] (found {arr.min():g} to {arr.max():g}); "
            "apply a sigmoid to logits first"
        )
    return arr


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    return clipped_logit(p)


@dataclass(frozen=True)
class Recalibrator:
    """A fitted score -> probability map.

    Attributes
    ----------
    method : {"platt", "temperature", "isotonic"}
        The method.
    params : dict
        ``platt``: ``a``, ``b`` with ``p' = sigmoid(a * logit(p) + b)``; ``temperature``:
        ``temperature`` with ``p' = sigmoid(logit(p) / T)``; ``isotonic``: ``x`` and ``y``
        (the step function's knots, linearly interpolated, clipped at the ends).
    n : int
        Number of site scores it was fitted on.
    n_pos : int
        Number of positive labels among them.
    """

    method: Method
    params: dict[str, Any] = field(default_factory=dict)
    n: int = 0
    n_pos: int = 0

    def transform(self, scores: ArrayLike) -> NDArray[np.float64]:
        """Map scores (probabilities) to recalibrated probabilities.

        Parameters
        ----------
        scores : array_like
            Probabilities in [0, 1].

        Returns
        -------
        numpy.ndarray
            Recalibrated probabilities, same shape as the flattened input.
        """
        return recalibration_map(self.method, self.params, _as_scores(scores))

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON data (see :meth:`from_dict`)."""
        return {"method": self.method, "params": self.params, "n": self.n, "n_pos": self.n_pos}

    def to_json(self) -> str:
        """Serialise deterministically."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recalibrator:
        """Rebuild a recalibrator from :meth:`to_dict` output.

        Raises
        ------
        InputError
            If the data is not a recalibrator description.
        """
        method = data.get("method") if isinstance(data, dict) else None
        if method not in METHODS:
            raise InputError(
                f"not a recalibrator description (method {method!r}; expected {METHODS})"
            )
        need = {"platt": ("a", "b"), "temperature": ("temperature",), "isotonic": ("x", "y")}
        params = data.get("params", {})
        missing = [k for k in need[method] if k not in params]
        if missing:
            raise InputError(f"recalibrator '{method}' is missing parameters {missing}")
        return cls(method=method, params=dict(params), n=int(data.get("n", 0)),
                   n_pos=int(data.get("n_pos", 0)))


def _fit_platt(z: NDArray[np.float64], y: NDArray[np.float64]) -> dict[str, float]:
    def nll(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        eta = theta[0] * z + theta[1]
        # log(1 + exp(eta)) - y * eta, stable
        loss = float(np.sum(np.logaddexp(0.0, eta) - y * eta))
        r = expit(eta) - y
        return loss, np.array([np.sum(r * z), np.sum(r)])

    prior = np.clip(y.mean(), EPS, 1 - EPS)
    res = minimize(nll, x0=np.array([1.0, 0.0]), jac=True, method="BFGS",
                   options={"gtol": 1e-10, "maxiter": 1000})
    a, b = (float(v) for v in res.x)
    if not (np.isfinite(a) and np.isfinite(b)):  # pragma: no cover - separable data guard
        a, b = 0.0, float(np.log(prior / (1 - prior)))
    return {"a": a, "b": b}


def _fit_temperature(z: NDArray[np.float64], y: NDArray[np.float64]) -> dict[str, float]:
    def nll(log_t: float) -> float:
        eta = z / np.exp(log_t)
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))

    res = minimize_scalar(nll, bounds=(np.log(1e-2), np.log(1e2)), method="bounded",
                          options={"xatol": 1e-10})
    return {"temperature": float(np.exp(res.x))}


def _fit_isotonic(p: NDArray[np.float64], y: NDArray[np.float64]) -> dict[str, list[float]]:
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(p, y)
    return {
        "x": [float(v) for v in iso.X_thresholds_],
        "y": [float(v) for v in iso.y_thresholds_],
    }


def recalibrate(
    train_scores: ArrayLike,
    train_labels: ArrayLike,
    method: Method = "platt",
    *,
    min_events: int = 1,
) -> Recalibrator:
    """Fit a recalibration map on site scores and labels.

    Parameters
    ----------
    train_scores : array_like
        Model probabilities on the site's fine-tuning rows.
    train_labels : array_like
        Binary labels (0/1) for the same rows.
    method : {"platt", "temperature", "isotonic"}
        Platt scaling (logistic regression on the logit, slope and intercept), temperature
        scaling (one divisor of the logit) or isotonic regression.
    min_events : int
        Minimum positives and negatives required.

    Returns
    -------
    Recalibrator

    Raises
    ------
    InputError
        If the inputs are not probabilities / binary labels of equal length, or there are
        fewer than ``min_events`` positives or negatives.
    """
    if method not in METHODS:
        raise InputError(f"unknown recalibration method '{method}'; use one of {METHODS}")
    p = _as_scores(train_scores, "train_scores")
    y = np.asarray(train_labels, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise InputError(
            f"train_scores ({p.size}) and train_labels ({y.size}) must have the same length"
        )
    if not np.all(np.isin(y, (0.0, 1.0))):
        raise InputError("train_labels must be 0/1 (found other values)")
    pos = int(y.sum())
    neg = int(y.size - pos)
    need = max(int(min_events), 1)
    if pos < need or neg < need:
        raise InputError(ERR_TOO_FEW.format(method=method, need=need, pos=pos, neg=neg))
    if method == "platt":
        params: dict[str, Any] = _fit_platt(_logit(p), y)
    elif method == "temperature":
        params = _fit_temperature(_logit(p), y)
    else:
        params = _fit_isotonic(p, y)
    return Recalibrator(method=method, params=params, n=int(y.size), n_pos=pos)


def apply_recalibration(
    scores: Mapping[str, ArrayLike], postprocess: Mapping[str, Any]
) -> dict[str, NDArray[np.float64]]:
    """Apply the ``recalibration`` section of a fine-tuned model's ``postprocess.json``.

    Parameters
    ----------
    scores : mapping
        Task name -> the parent model's scores (e.g. the ``score:<task>`` columns).
    postprocess : mapping
        The parsed ``postprocess.json``.

    Returns
    -------
    dict
        Task name -> recalibrated scores (tasks without a map are returned unchanged).

    Raises
    ------
    InputError
        If a recalibrator description is invalid.
    """
    maps = postprocess.get("recalibration") or {}
    out = {}
    for task, values in scores.items():
        if task in maps:
            out[task] = Recalibrator.from_dict(maps[task]).transform(values)
        else:
            out[task] = np.asarray(values, dtype=np.float64)
    return out
