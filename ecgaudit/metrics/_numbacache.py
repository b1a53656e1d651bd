"""Where numba caches compiled kernels, so that a read-only install still works.

numba caches next to the source (``__pycache__``) or in the user's cache folder under HOME;
when neither is writable (a system install used by another user, a container with a
read-only HOME) ``njit(cache=True)`` raises at decoration time - even ``--help`` failed.
:func:`choose_cache` then points numba at a private temporary folder, or turns caching off.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["choose_cache"]


def _cache_works(numba_module: object) -> bool:
    """Return True if numba can cache a function of this file.

    numba raises at decoration when no cache location is writable (package read-only and
    HOME unwritable).
    """
    try:
        numba_module.njit(cache=True)(_probe)  # type: ignore[attr-defined]
    except (RuntimeError, OSError):
        return False
    return True


def _probe() -> int:  # pragma: no cover - never compiled, only decorated
    return 0


def choose_cache(numba_module: object) -> bool:
    """Choose where numba caches: its default places, else a private temporary folder.

    Without any writable place kernels compile without a cache; a read-only install must
    still work.
    """
    if _cache_works(numba_module):
        return True
    config = numba_module.config  # type: ignore[attr-defined]
    before = config.CACHE_DIR
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    fallback = Path(tempfile.gettempdir()) / f"ecgaudit-numba-cache-{uid}"
    try:
        fallback.mkdir(mode=0o700, exist_ok=True)
        st = fallback.stat()
        if (hasattr(os, "getuid") and st.st_uid != os.getuid()) or not os.access(
                fallback, os.W_OK | os.X_OK):
            raise PermissionError(str(fallback))
        config.CACHE_DIR = str(fallback)
        if _cache_works(numba_module):
            return True
    except OSError:
        pass
    config.CACHE_DIR = before
    return False
