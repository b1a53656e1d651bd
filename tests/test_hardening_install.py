"""Issue 13, class 7: ecgaudit works from a read-only install for a user whose HOME is not
writable (a system install used by another user, a container).

As root (CI) the CLI runs as ``nobody`` through ``setpriv``; as any other user it runs as
that user, for whom the read-only copy and HOME are equally unwritable.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._hardening import ROOT, good_frame

NOBODY = 65534
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SETPRIV = shutil.which("setpriv")

pytestmark = pytest.mark.skipif(
    IS_ROOT and SETPRIV is None,
    reason="running as root without setpriv (util-linux): cannot drop privileges to nobody",
)


def _make_read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        mode = 0o555 if p.is_dir() else 0o444
        p.chmod(mode)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[dict[str, Path]]:
    """A read-only copy of the package, an unwritable HOME and a writable work folder."""
    base = Path(tempfile.mkdtemp(prefix="ecgaudit-ro-", dir="/tmp"))
    base.chmod(0o755)
    site = base / "site"
    shutil.copytree(ROOT / "ecgaudit", site / "ecgaudit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    # the wheel's layout: the top-level report templates ship inside the package
    shutil.copytree(ROOT / "reports" / "templates", site / "ecgaudit" / "reports" / "templates")
    _make_read_only(site)
    home = base / "home"
    home.mkdir()
    home.chmod(0o555)
    work = base / "work"
    work.mkdir()
    work.chmod(0o777)
    good_frame(120).to_csv(work / "preds.csv", index=False)
    (work / "preds.csv").chmod(0o644)
    yield {"base": base, "site": site, "home": home, "work": work}
    for p in [base, *base.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(stat.S_IRWXU)
    shutil.rmtree(base, ignore_errors=True)


def _run(box: dict[str, Path], *args: object) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(box["home"]), "PYTHONPATH": str(box["site"]),
           "LANG": "C.UTF-8"}
    prefix = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] \
        if IS_ROOT else []
    return subprocess.run([*prefix, sys.executable, "-m", "ecgaudit", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=box["work"],
                          timeout=600, check=False)


def _ok(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr + res.stdout, res.stderr


def _as_user(box: dict[str, Path], code: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(box["home"]), "PYTHONPATH": str(box["site"])}
    prefix = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] \
        if IS_ROOT else []
    return subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True,
                          text=True, env=env, cwd=box["work"], timeout=300, check=False)


@pytest.mark.slow
def test_commands_work_read_only_with_an_unwritable_home(sandbox: dict[str, Path]) -> None:
    res = _as_user(sandbox, "import os, sys, ecgaudit; print(ecgaudit.__file__, "
                            "os.access(os.path.dirname(ecgaudit.__file__), os.W_OK), "
                            "os.access(os.environ['HOME'], os.W_OK))")
    _ok(res)
    path, pkg_writable, home_writable = res.stdout.split()
    assert path.startswith(str(sandbox["site"])) and pkg_writable == home_writable == "False"
    _ok(_run(sandbox, "--help"))  # numba's cache used to make even this a traceback
    _ok(_run(sandbox, "audit", "--help"))
    cfg = sandbox["work"] / "audit.yaml"
    cfg.write_text("tasks: [{name: t, label: y, score: p}]\nattributes: {sex: {}}\n"
                   "engine: numpy\n")  # no kernel compilation: keeps the test fast
    cfg.chmod(0o644)
    out = sandbox["work"] / "o"
    _ok(_run(sandbox, "audit", "preds.csv", "--config", cfg, "--out", out))
    assert {"metrics.csv", "results.json", "report.html"} <= {p.name for p in out.iterdir()}
    _ok(_run(sandbox, "report", out, "-o", sandbox["work"] / "again.html"))
    assert not list(sandbox["site"].rglob("__pycache__")), "nothing written into the package"
    shared = sandbox["base"] / "shared"  # a folder the user may write, in a read-only parent
    (shared / "results").mkdir(parents=True)
    shared.chmod(0o755)
    (shared / "results").chmod(0o777)
    _ok(_run(sandbox, "audit", "preds.csv", "--config", cfg, "--out", shared / "results",
             "--no-report"))
    assert {"metrics.csv", "results.json"} <= {p.name for p in (shared / "results").iterdir()}
    res = _run(sandbox, "audit", "preds.csv", "--config", cfg, "--out", sandbox["home"] / "o")
    assert res.returncode == 2, res.stderr
    assert "not writable" in res.stderr and "--out" in res.stderr
    assert "Traceback" not in res.stderr


def test_numba_cache_falls_back_to_a_private_folder_or_to_none(
        sandbox: dict[str, Path]) -> None:
    code = ("import numba, ecgaudit.metrics._kernels as k; "
            "print(k.HAVE_NUMBA, k._CACHE, numba.config.CACHE_DIR or '-')")
    res = _as_user(sandbox, code)
    _ok(res)
    have, cache, where = res.stdout.split()
    assert have == "True" and cache == "True"
    uid = NOBODY if IS_ROOT else os.getuid()
    assert where.endswith(f"ecgaudit-numba-cache-{uid}")
    assert oct(Path(where).stat().st_mode & 0o777) == oct(0o700)


class _FakeNumba:
    """numba's behaviour without a usable cache location: ``njit(cache=True)`` raises."""

    def __init__(self, works_with_cache_dir: bool) -> None:
        self.config = type("C", (), {"CACHE_DIR": ""})()
        self.works_with_cache_dir = works_with_cache_dir

    def njit(self, cache: bool = False, **_: object):
        if cache and not (self.works_with_cache_dir and self.config.CACHE_DIR):
            raise RuntimeError("cannot cache function '_probe': no locator available")
        return lambda f: f


def test_cache_choice_without_any_writable_location(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import ecgaudit.metrics._numbacache as k

    monkeypatch.setattr(k.tempfile, "gettempdir", lambda: str(tmp_path))
    fake = _FakeNumba(works_with_cache_dir=True)
    assert k.choose_cache(fake) is True
    assert str(tmp_path / f"ecgaudit-numba-cache-{os.getuid()}") == fake.config.CACHE_DIR
    nothing = _FakeNumba(works_with_cache_dir=False)
    assert k.choose_cache(nothing) is False and nothing.config.CACHE_DIR == ""
    monkeypatch.setattr(k.tempfile, "gettempdir", lambda: str(tmp_path / "missing" / "x"))
    assert k.choose_cache(_FakeNumba(works_with_cache_dir=True)) is False


def test_unreadable_input_is_an_input_error(sandbox: dict[str, Path]) -> None:
    secret = sandbox["work"] / "secret.csv"
    secret.write_text("ecg_id,y\n1,0\n")
    secret.chmod(0o000)
    res = _run(sandbox, "audit", secret, "--label", "y", "--score", "p",
               "--out", sandbox["work"] / "o3")
    assert res.returncode == 2, res.stderr
    assert "secret.csv" in res.stderr
    assert "not readable" in res.stderr or "permission denied" in res.stderr
    assert "Traceback" not in res.stderr
