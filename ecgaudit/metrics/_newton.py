"""The one logistic-recalibration fit: damped Newton steps on weighted (score, label) cells.

The fit ``logit P(y = 1) = a + b x`` (``x`` the calibration logit of the score) maximises
the weighted Bernoulli log-likelihood. Every engine applies the same rules, defined once
here:

* start at the given ``(a, b)`` (the point estimate for replicates; else ``(0, 1)``, the
  identity recalibration);
* a Newton direction needs a positive Hessian determinant (else the fit fails);
* a step smaller than :data:`FINAL` relative to the parameters is taken and ends the fit
  (quadratic convergence: the remaining error is of order ``step**2``);
* a step larger than :data:`GUARD` is halved (at most :data:`HALVINGS` times) while the
  log-likelihood drops by more than a relative ``1e-12`` (:func:`accepts`);
* parameters beyond :data:`DIVERGED` fail the fit; a taken step below :data:`TOL` relative
  to the parameters ends it; :data:`MAX_ITER` iterations without convergence fail it.

The rule functions are written on scalars *or* arrays: the vectorised numpy engine
(:mod:`ecgaudit.metrics._bootstats`) calls them on arrays, and the compiled kernels
(:mod:`ecgaudit.metrics._kernels`, :mod:`ecgaudit.metrics._binfused`) compile these very
functions (``_jit(_newton.fit_weighted)`` etc.). :func:`fit_weighted` is the whole fit of one
group from its cells; :func:`ecgaudit.metrics._calibration.logistic_recalibration` and the
binned engine call it, the compiled row engine runs the same steps for all groups in one
pass over the rows (:func:`ecgaudit.metrics._kernels._calibrate`).
"""

from __future__ import annotations

import math

import numpy as np

from ecgaudit.metrics._compile import _ijit, _jit

__all__ = [
    "DIVERGED", "FINAL", "GUARD", "HALVINGS", "MAX_ITER", "TOL", "accepts", "converged",
    "determinant", "direction", "diverged", "fit_weighted", "is_final", "loglik", "sigmoid",
    "softplus", "step_size",
]

MAX_ITER = 100
TOL = 1e-10
FINAL = 1e-5  # a Newton step this small leaves an error of order step**2 ~ 1e-10
GUARD = 0.5
DIVERGED = 1e6
HALVINGS = 40


@_ijit
def step_size(da, db):  # type: ignore[no-untyped-def]
    """Size of a Newton step: ``max(|da|, |db|)``."""
    return np.maximum(np.abs(da), np.abs(db))


@_ijit
def is_final(da, db, a, b):  # type: ignore[no-untyped-def]
    """Whether the step from ``(a, b)`` is small enough to be the last one."""
    return step_size(da, db) < FINAL * (1.0 + np.maximum(np.abs(a + da), np.abs(b + db)))


@_ijit
def accepts(new, ll):  # type: ignore[no-untyped-def]
    """Whether a log-likelihood ``new`` after a step keeps ``ll`` (up to 1e-12 relative)."""
    return new >= ll - 1e-12 * np.abs(ll)


@_ijit
def diverged(a, b):  # type: ignore[no-untyped-def]
    """Whether the parameters ran away (or became ``nan``)."""
    return np.logical_not(np.maximum(np.abs(a), np.abs(b)) < DIVERGED)


@_ijit
def converged(taken, a, b):  # type: ignore[no-untyped-def]
    """Whether a taken step of size ``taken`` ends the fit at ``(a, b)``."""
    return taken < TOL * (1.0 + np.maximum(np.abs(a), np.abs(b)))


@_ijit
def determinant(haa, hab, hbb):  # type: ignore[no-untyped-def]
    """Return the determinant of the Hessian ``[[haa, hab], [hab, hbb]]`` (> 0: a step)."""
    return haa * hbb - hab * hab


@_ijit
def direction(ga, gx, haa, hab, hbb, det):  # type: ignore[no-untyped-def]
    """Newton direction ``H^-1 g`` from the gradient and Hessian entries (``det > 0``)."""
    return (hbb * ga - hab * gx) / det, (haa * gx - hab * ga) / det


@_ijit
def sigmoid(eta: float) -> float:
    """``1 / (1 + exp(-eta))`` of a scalar (the fitted probability)."""
    return 1.0 / (1.0 + math.exp(-eta))


@_ijit
def softplus(eta: float) -> float:
    """``log(1 + exp(eta))`` of a scalar without overflow (the log-likelihood's term)."""
    return eta + math.log1p(math.exp(-eta)) if eta > 0 else math.log1p(math.exp(eta))


@_jit
def loglik(x, w0, w1, a, b):  # type: ignore[no-untyped-def]
    """Weighted log-likelihood of cells ``x`` with ``w0`` negatives and ``w1`` positives."""
    out = 0.0
    for k in range(x.size):
        eta = a + b * x[k]
        soft = softplus(eta)
        for y in range(2):
            w = w0[k] if y == 0 else w1[k]
            if w:
                out += w * (y * eta - soft)
    return out


@_jit
def fit_weighted(x, w0, w1, a, b):  # type: ignore[no-untyped-def]
    """Fit one group from its cells; return ``(a, b)``, ``nan`` if the fit fails.

    Parameters
    ----------
    x : ndarray of float64
        Covariate (calibration logit) of each cell.
    w0, w1 : ndarray of int64
        Negatives and positives in each cell (a row is a cell with one of them 1 or its
        bootstrap weight).
    a, b : float
        Start values.

    Returns
    -------
    tuple of float
        Intercept and slope.
    """
    for _ in range(MAX_ITER):
        ga = gx = haa = hab = hbb = 0.0
        for k in range(x.size):
            xk = x[k]
            mu = sigmoid(a + b * xk)
            for y in range(2):
                w = w0[k] if y == 0 else w1[k]
                if w == 0:
                    continue
                r = w * (y - mu)
                v = w * (mu * (1.0 - mu))
                ga += r
                gx += r * xk
                haa += v
                hab += v * xk
                hbb += v * xk * xk
        det = determinant(haa, hab, hbb)
        if not det > 0:
            return np.nan, np.nan
        da, db = direction(ga, gx, haa, hab, hbb, det)
        if is_final(da, db, a, b):
            return a + da, b + db
        tt = 1.0
        if step_size(da, db) > GUARD:
            ll = loglik(x, w0, w1, a, b)
            for _h in range(HALVINGS):
                if accepts(loglik(x, w0, w1, a + tt * da, b + tt * db), ll):
                    break
                tt /= 2.0
        a += tt * da
        b += tt * db
        if diverged(a, b):
            return np.nan, np.nan
        if converged(tt * step_size(da, db), a, b):
            return a, b
    return np.nan, np.nan
