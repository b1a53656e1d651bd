"""numba's decorators as the kernels use them (identity functions without numba).

``_jit`` compiles a kernel (cached on disk, GIL released), ``_ijit`` a helper inlined into
its callers, ``_pjit`` a kernel with parallel ``prange`` loops; ``_vjit`` / ``_vijit`` are
``_jit`` / ``_ijit`` with numpy's float errors (division by 0 gives inf/nan, no Python
check per operation). Without numba
(``HAVE_NUMBA`` False) they return the plain Python function and ``prange`` is ``range``.
"""

from __future__ import annotations

from ecgaudit.metrics._numbacache import choose_cache

__all__ = ["HAVE_NUMBA", "plain", "prange"]

try:  # pragma: no cover - exercised in both environments by the test suite's CI image
    import numba

    HAVE_NUMBA = True
    _CACHE = choose_cache(numba)
    _jit = numba.njit(cache=_CACHE, nogil=True)
    _ijit = numba.njit(cache=_CACHE, nogil=True, inline="always")
    _pjit = numba.njit(cache=_CACHE, nogil=True, parallel=True)
    _vjit = numba.njit(cache=_CACHE, nogil=True, error_model="numpy")
    _vijit = numba.njit(cache=_CACHE, nogil=True, error_model="numpy", inline="always")
    prange = numba.prange
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False
    _CACHE = False

    def _jit(f):  # type: ignore[no-untyped-def]
        return f

    _pjit = _ijit = _vjit = _vijit = _jit
    prange = range


def plain(f):  # type: ignore[no-untyped-def]
    """Return the Python function behind a compiled one (for numpy arrays), or ``f``."""
    return getattr(f, "py_func", f)
