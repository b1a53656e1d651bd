"""Issue 13, class 3: bad output paths are input errors (exit 2 with advice), a run's output
set is atomic, and concurrent runs into one folder are refused - through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ecgaudit.io._outset as outset
from ecgaudit.errors import InputError
from ecgaudit.io import output_lock, write_output_set
from tests._hardening import AUDIT_FLAGS, MODEL_CONFIG, WEIGHTS, assert_exit2, good_frame, invoke


@pytest.fixture()
def preds(tmp_path: Path) -> Path:
    p = tmp_path / "preds.csv"
    good_frame().to_csv(p, index=False)
    return p


def _audit(preds: Path, out: Path, *extra: object):
    return invoke(["audit", preds, *AUDIT_FLAGS, "--out", out, *extra])


def test_out_naming_an_existing_file_or_the_input(preds: Path, tmp_path: Path) -> None:
    before = preds.read_bytes()
    assert_exit2(_audit(preds, preds), "--out", "input files", "choose another --out")
    assert preds.read_bytes() == before
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    assert_exit2(_audit(preds, other), "is an existing file", "give a folder path")
    assert other.read_text() == "keep me"
    assert_exit2(_audit(preds, other / "sub"), "is a file, not a folder")


def test_file_options_naming_a_folder(preds: Path, tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    policy = tmp_path / "p.yaml"
    policy.write_text("rules:\n  - metric: auroc\n    min: 0.5\n")
    assert_exit2(_audit(preds, tmp_path / "o", "--policy", policy, "--junit", folder),
                 "--junit", "is a folder", "give a file path", out=tmp_path / "o")
    assert_exit2(invoke(["gate", tmp_path / "o", "--policy", policy, "--junit", folder]),
                 "--junit", "is a folder")
    assert_exit2(invoke(["report", tmp_path / "o", "-o", folder]), "--out", "is a folder")
    dcsv = tmp_path / "x.csv"
    dcsv.mkdir()
    assert_exit2(invoke(["predict", "--model", WEIGHTS, "--model-config", MODEL_CONFIG,
                         "--ecgs", tmp_path, "-o", dcsv]), "--out", "is a folder")
    assert_exit2(invoke(["predict", "--model", WEIGHTS, "--model-config", MODEL_CONFIG,
                         "--ecgs", tmp_path, "-o", MODEL_CONFIG.with_suffix(".csv")]))


def _listing(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_rerun_killed_midway_leaves_the_previous_set_untouched(
        preds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "o"
    assert _audit(preds, out, "--seed", "1").exit_code == 0
    (out / "mine.txt").write_text("user file")
    first = _listing(out)
    real_fsync, calls = os.fsync, []

    def dying_fsync(fd: int) -> None:  # the run is "killed" after two files are written
        calls.append(fd)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_fsync(fd)

    monkeypatch.setattr(outset.os, "fsync", dying_fsync)
    f = good_frame(seed=5)
    f.to_csv(preds, index=False)
    res = _audit(preds, out, "--seed", "2")
    assert res.exit_code == 130 and "Traceback" not in res.output
    monkeypatch.setattr(outset.os, "fsync", real_fsync)
    assert _listing(out) == first  # nothing of the second run, nothing lost
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.tmp-")]
    # A completed re-run replaces the whole set and keeps the user's file.
    assert _audit(preds, out, "--seed", "2").exit_code == 0
    second = _listing(out)
    assert second["mine.txt"] == b"user file"
    assert second["results.json"] != first["results.json"]
    seed = json.loads(second["results.json"])["manifest"]["config"]["seed"]
    assert seed == 2


def test_stale_members_of_an_earlier_set_are_removed(preds: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert invoke(["audit", preds, "--label", "y", "--score", "p", "--sex", "sex",
                   "--out", out]).exit_code == 0
    assert (out / "report.html").is_file()
    assert _audit(preds, out).exit_code == 0  # --no-report
    assert not (out / "report.html").exists()  # no report of another run beside results


def test_killed_process_leaves_only_a_hidden_temporary_folder(tmp_path: Path) -> None:
    out = tmp_path / "o"
    write_output_set(out, {"a.csv": b"1", "b.json": b"1"})
    script = (
        "import os, sys\n"
        "import ecgaudit.io._outset as s\n"
        "real = s.os.fsync\n"
        "def boom(fd):\n"
        "    real(fd); os.kill(os.getpid(), 9)\n"
        "s.os.fsync = boom\n"
        f"s.write_output_set({str(out)!r}, {{'a.csv': b'2', 'b.json': b'2'}})\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert res.returncode == -9
    assert _listing(out) == {"a.csv": b"1", "b.json": b"1"}
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".o.tmp-")]
    assert len(left) == 1  # the killed run's staging folder, hidden
    write_output_set(out, {"a.csv": b"3", "b.json": b"3"})  # the next run cleans it up
    assert _listing(out) == {"a.csv": b"3", "b.json": b"3"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".o.tmp-", ".o.old-"))]


def test_interrupted_two_rename_swap_is_recovered(tmp_path: Path) -> None:
    out = tmp_path / "o"
    write_output_set(out, {"a.csv": b"1"})
    os.rename(out, tmp_path / ".o.old-abc123")  # killed between the two renames
    write_output_set(out, {"b.csv": b"2"})
    assert _listing(out) == {"a.csv": b"1", "b.csv": b"2"}


def test_concurrent_run_into_the_same_folder_is_refused(preds: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom ecgaudit.io import output_lock\n"
         f"with output_lock({str(out)!r}):\n    print('held', flush=True)\n"
         "    time.sleep(60)\n"],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        text = assert_exit2(_audit(preds, out), "being written by another ecgaudit run",
                            "choose another --out")
        assert not out.exists()  # the refused run wrote nothing (the lock is the holder's)
        assert ".o.lock" in text
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    time.sleep(0.1)
    assert _audit(preds, out).exit_code == 0  # the lock dies with its holder


def test_lock_is_reentrant_in_one_process_and_refused_across(tmp_path: Path) -> None:
    out = tmp_path / "o"
    with output_lock(out):
        write_output_set(out, {"x.txt": b"1"})  # save() inside a locked CLI run
    assert (out / "x.txt").read_bytes() == b"1"
    with pytest.raises(InputError, match="not a folder"):
        write_output_set(out / "x.txt", {"y": b""})
