"""Counter-based uniform numbers shared by the numpy and the compiled bootstrap paths.

Replicate ``b`` of seed ``s`` gives unit slot ``j`` the uniform number
``u(s, b, j) = (splitmix64(key(s, b) + (j + 1) * G) >> 11) * 2**-53`` with
``key(s, b) = splitmix64(splitmix64(s) + (b + 1) * G2)``. The numbers depend only on
``(seed, replicate, slot)``, not on how replicates are batched or which thread draws them,
and the numpy and compiled implementations give bit-identical draws (integer arithmetic
modulo 2**64 and one exact float conversion). SplitMix64 is the finaliser of Steele, Lea &
Flood (2014); used as a counter-based generator it passes BigCrush.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GOLDEN", "mix64", "replicate_keys", "slot_counter", "splitmix64", "to_unit",
           "uniforms"]

GOLDEN = 0x9E3779B97F4A7C15
_G2 = 0xD1B54A32D192ED03
_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(GOLDEN)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)

# The three steps below are the only implementation of the stream. They are written on
# uint64 values so that the same functions serve numpy arrays here and, compiled by
# numba, scalars inside the kernels (:mod:`ecgaudit.metrics._drawkernels` jits these very
# functions): there is no second copy to keep in step.


def slot_counter(key, j1):  # type: ignore[no-untyped-def]
    """Counter of slot ``j1 - 1`` (``j1`` uint64, scalar or array): ``key + j1 * G``."""
    return j1 * _GOLDEN + key


def mix64(z):  # type: ignore[no-untyped-def]
    """SplitMix64 finaliser of uint64 ``z`` (scalar or array), modulo 2**64."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def to_unit(z):  # type: ignore[no-untyped-def]
    """Map the top 53 bits of uint64 ``z`` to a float in ``[0, 1)`` (exact)."""
    # The 53 bits fit a signed integer: its conversion is one instruction where the
    # unsigned one takes several (same value either way).
    return np.int64(z >> _S11) * 2.0**-53


def splitmix64(z: int) -> int:
    """SplitMix64 finaliser of a Python integer (modulo 2**64)."""
    with np.errstate(over="ignore"):
        return int(mix64(np.uint64(int(z) & _MASK)))


def replicate_keys(seed: int, replicates: range | np.ndarray) -> np.ndarray:
    """Per-replicate keys as ``uint64`` (see the module docstring)."""
    base = splitmix64(int(seed))
    return np.array([splitmix64(base + (int(b) + 1) * _G2) for b in replicates], dtype=np.uint64)


def uniforms(key: np.uint64 | int, n: int) -> np.ndarray:
    """Return the ``n`` uniforms in ``[0, 1)`` of one replicate key (numpy implementation)."""
    with np.errstate(over="ignore"):
        z = slot_counter(np.uint64(int(key)), np.arange(1, n + 1, dtype=np.uint64))
        return to_unit(mix64(z))
