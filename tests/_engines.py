"""Real engines for the warehouse tests: a throwaway PostgreSQL server and local Spark.

``postgres_url`` (session scope) runs ``initdb`` in a fresh temporary directory, starts the
server on a free localhost port with password authentication, yields its URL
(``postgresql://ecgaudit:<password>@127.0.0.1:<port>/postgres``) and stops and deletes it
at the end of the session. As root (CI containers) it runs the server as the ``postgres``
user (``runuser``), because PostgreSQL refuses to run as root. The Debian ``postgresql`` and
``openjdk-17-jre-headless`` packages come from ``make system-deps`` (part of ``make test``);
a test is skipped only where they are missing, and fails instead when ``CI`` is set.

``spark`` (session scope) is a ``local[2]`` SparkSession with few shuffle partitions; the
engine's ``spark:local[2]`` connection finds the same session.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _missing(what: str) -> None:
    msg = f"{what} not installed: run `make system-deps` (Debian packages)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    return Path(which).resolve().parent if which else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL server (user ``ecgaudit``, password auth)."""
    bindir = _pg_bin()
    if bindir is None:
        _missing("PostgreSQL server (initdb)")
    root = Path(tempfile.mkdtemp(prefix="ecgaudit-pg-"))
    data, sock, pwfile = root / "data", root / "sock", root / "pw"
    sock.mkdir()
    password = secrets.token_hex(8)
    pwfile.write_text(password + "\n")
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam("postgres")
        for p in (root, sock, pwfile):
            os.chown(p, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    os.chmod(root, 0o700)
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "ecgaudit",
                    f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True, env=env)
    port = _free_port()
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l",
                    str(root / "log"), "-o", opts, "-w", "-t", "60", "start"],
                   check=True, capture_output=True, env=env)
    try:
        yield f"postgresql://ecgaudit:{password}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                        "-w", "stop"], capture_output=True, env=env)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """A local[2] SparkSession (Java from Debian's OpenJDK)."""
    if shutil.which("java") is None:
        _missing("Java (openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = (SparkSession.builder.master("local[2]").appName("ecgaudit-tests")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
