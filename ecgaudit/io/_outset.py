"""Write a run's output files as one set: all of them or none, never a mix of two runs.

:func:`write_output_set` writes every file into a temporary sibling folder
(``.<name>.tmp-XXXX``), fsyncs them, then swaps that folder with the output folder:

* the output folder does not exist yet: one ``rename`` (atomic);
* it exists: files that are not part of the new set (the user's own; members of an
  earlier set are dropped) are hard-linked into the staging folder first, then the two
  folders are
  exchanged atomically (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames, with
  the old folder kept under ``.<name>.old-XXXX`` until the second one succeeded), and the
  old folder is deleted;
* it exists but cannot be swapped (it is the working directory, or its parent is not
  writable): each file is replaced atomically, one by one.

A killed run leaves only a hidden ``.<name>.tmp-*`` folder, never a mixed set; the next
run into the same folder removes it. Concurrent
runs into one folder are refused: :func:`output_lock` holds an exclusive ``flock`` on
``.<name>.lock`` beside it (inside it when the parent is read-only) for as long as a run
writes there.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ecgaudit.errors import InputError

__all__ = ["OUTPUT_SET_NAMES", "output_lock", "write_output_set"]

#: Files of one audit run. A new set replaces all of them: a ``report.html`` or
#: ``gate.json`` left from an earlier run is removed, never kept beside new results.
OUTPUT_SET_NAMES = ("metrics.csv", "disparities.csv", "results.json", "gate.json",
                    "report.html", "curves_by_value.csv", "controlled_disparities.csv")

MSG_BUSY = (
    "output folder '{name}' is being written by another ecgaudit run (lock file '{lock}'); "
    "wait for it to finish or choose another --out"
)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_HELD: dict[str, int] = {}


def _can_swap(out: Path) -> bool:
    """Return True if the folder can be swapped: its parent is writable (renames)."""
    parent = out.parent
    return not parent.exists() or os.access(parent, os.W_OK | os.X_OK)


def _lock_path(out: Path) -> Path:
    if _can_swap(out) or not out.is_dir():
        return out.parent / f".{out.name}.lock"
    return out / ".ecgaudit.lock"  # parent read-only (a shared folder): lock inside


@contextlib.contextmanager
def output_lock(out_dir: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of an output folder (re-entrant within one process).

    Parameters
    ----------
    out_dir : str or Path
        The output folder (it need not exist; its parent is created).

    Raises
    ------
    InputError
        If another process holds the lock.
    """
    out = Path(out_dir).absolute()
    key = str(out)
    if key in _HELD:
        yield
        return
    lock = _lock_path(out)
    lock.parent.mkdir(parents=True, exist_ok=True)
    created = not lock.exists()
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(MSG_BUSY.format(name=out.name, lock=lock.name)) from None
    except ImportError:  # pragma: no cover - no fcntl (Windows): no locking
        pass
    except BaseException:
        os.close(fd)
        raise
    _HELD[key] = fd
    try:
        yield
    finally:
        del _HELD[key]
        if created and not out.exists():  # a failed run leaves no litter beside nothing
            lock.unlink(missing_ok=True)
        os.close(fd)  # releases the flock; once outputs exist the lock file stays


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False when unsupported."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                   ctypes.c_uint]
    return bool(fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                   _RENAME_EXCHANGE) == 0)


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (else copy) ``src`` into ``dst``, keeping symlinks as symlinks."""
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        dst.mkdir()
        for child in src.iterdir():
            _link_tree(child, dst / child.name)
    else:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def _stage(tmp: Path, files: Mapping[str, bytes]) -> None:
    os.chmod(tmp, 0o777 & ~_umask())
    for rel, data in files.items():
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(dest, 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_in(tmp: Path, out: Path) -> None:
    if _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _recover(out: Path) -> None:
    """Clean up after a run that was killed while writing (called under the lock).

    An interrupted two-rename swap leaves the previous set in ``.<name>.old-*``: it is put
    back. Staging folders ``.<name>.tmp-*`` of killed runs are deleted.
    """
    olds = sorted(out.parent.glob(f".{glob.escape(out.name)}.old-*"))
    if olds and not out.exists():
        os.rename(olds.pop(), out)
    for left in [*olds, *out.parent.glob(f".{glob.escape(out.name)}.tmp-*")]:
        shutil.rmtree(left, ignore_errors=True)


def write_output_set(out_dir: str | Path, files: Mapping[str, bytes],
                     replaces: Iterable[str] = OUTPUT_SET_NAMES) -> dict[str, Path]:
    """Write ``files`` (relative name -> bytes) into ``out_dir`` as one atomic set.

    Files already in ``out_dir`` are kept unless they are in ``files`` or named in
    ``replaces`` (the members of an earlier set, which must not survive beside the new
    one). If ``out_dir`` is the current working directory (or holds it), or its parent is
    not writable, the files are replaced one by one instead (each atomically), since the
    folder itself cannot be swapped.

    Parameters
    ----------
    out_dir : str or Path
        The output folder (created if needed).
    files : mapping of str to bytes
        The set, by name relative to ``out_dir``.
    replaces : iterable of str
        Names of an earlier set's files to remove (default :data:`OUTPUT_SET_NAMES`).

    Returns
    -------
    dict of str to Path
        Where every file now is.

    Raises
    ------
    InputError
        If another run holds the folder's lock, or ``out_dir`` is a file.
    """
    out = Path(out_dir).absolute()
    if out.is_symlink():
        out = out.resolve()  # swap the folder it points to, keep the link
    if out.exists() and not out.is_dir():
        raise InputError(f"output folder '{out.name}' exists and is not a folder; "
                         "choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        _recover(out)
        cwd = Path.cwd().resolve()
        if out.is_dir() and (out.resolve() == cwd or out.resolve() in cwd.parents
                             or not _can_swap(out)):
            from ecgaudit.io._atomic import atomic_write_bytes

            for rel, data in files.items():
                atomic_write_bytes(out / rel, data)
            for stale in set(replaces) - set(files):
                (out / stale).unlink(missing_ok=True)
            return {rel: Path(out_dir) / rel for rel in files}
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            _stage(tmp, files)
            if not out.exists():
                os.rename(tmp, out)
            else:
                os.chmod(tmp, stat.S_IMODE(out.stat().st_mode))
                tops = {Path(rel).parts[0] for rel in files} | set(replaces)
                for child in out.iterdir():
                    if child.name not in tops:
                        _link_tree(child, tmp / child.name)
                _swap_in(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return {rel: Path(out_dir) / rel for rel in files}
