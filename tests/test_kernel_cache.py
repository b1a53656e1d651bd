"""numba's kernel cache is dropped whenever any kernel module's source changes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ecgaudit.metrics import _kernels

pytestmark = pytest.mark.skipif(not _kernels.HAVE_NUMBA, reason="numba is a dev dependency")


def _digest() -> str:
    here = Path(_kernels.__file__).resolve().parent
    h = hashlib.sha256()
    for name in _kernels.KERNEL_MODULES:
        h.update((here / f"{name}.py").read_bytes())
    return h.hexdigest()


def test_stale_kernel_cache_is_dropped_and_a_current_one_kept(tmp_path: Path) -> None:
    stamp = tmp_path / "ecgaudit-kernels.sha256"
    stamp.write_text("built from other sources")
    stale = [tmp_path / "_binfused.binned_replicates-42.py311.nbi",
             tmp_path / "_kernels.task_stats-316.py311.1.nbc"]
    other = tmp_path / "somebody_else.f-1.py311.nbi"  # not ours: left alone
    for f in (*stale, other):
        f.write_bytes(b"old machine code")
    _kernels._drop_stale_cache(tmp_path)
    assert not any(f.exists() for f in stale)
    assert other.exists()
    assert stamp.read_text() == _digest()
    # Sources unchanged since the stamp: the cache is kept.
    fresh = tmp_path / "_binkernels.scan_one-128.py311.nbi"
    fresh.write_bytes(b"current machine code")
    _kernels._drop_stale_cache(tmp_path)
    assert fresh.exists()


def test_the_real_cache_directory_carries_the_current_stamp() -> None:
    cache = _kernels._cache_dir()
    assert cache is not None
    assert (cache / "ecgaudit-kernels.sha256").read_text() == _digest()
