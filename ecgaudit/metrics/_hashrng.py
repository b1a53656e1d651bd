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

__all__ = ["GOLDEN", "replicate_keys", "splitmix64", "uniforms"]

GOLDEN = 0x9E3779B97F4A7C15
_G2 = 0xD1B54A32D192ED03
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_MASK = (1 << 64) - 1


def splitmix64(z: int) -> int:
    """SplitMix64 finaliser of a Python integer (modulo 2**64)."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def replicate_keys(seed: int, replicates: range | np.ndarray) -> np.ndarray:
    """Per-replicate keys as ``uint64`` (see the module docstring)."""
    base = splitmix64(int(seed))
    return np.array([splitmix64(base + (int(b) + 1) * _G2) for b in replicates], dtype=np.uint64)


def uniforms(key: np.uint64 | int, n: int) -> np.ndarray:
    """Return the ``n`` uniforms in ``[0, 1)`` of one replicate key (numpy implementation)."""
    z = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z *= np.uint64(GOLDEN)
        z += np.uint64(int(key))
        z ^= z >> np.uint64(30)
        z *= np.uint64(_M1)
        z ^= z >> np.uint64(27)
        z *= np.uint64(_M2)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
