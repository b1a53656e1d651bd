"""``ecgaudit predict`` through the real CLI."""

from __future__ import annotations

import json
import os
import pickle
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ecgaudit.cli import app
from ecgaudit.models import predict

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "ptbxl_model"
WEIGHTS, CONFIG = EX / "ecgresnet_ptbxl.safetensors", EX / "ecgresnet_ptbxl.json"
runner = CliRunner()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 24 example ECGs as an .npy + sidecar + index (fast to score)."""
    d = tmp_path_factory.mktemp("ecgs")
    with np.load(EX / "waveforms_fold10.npz") as z:
        np.save(d / "w.npy", z["signals"][:24])
    sidecar = json.loads((EX / "waveforms_fold10.json").read_text())
    (d / "w.json").write_text(json.dumps(sidecar))
    pd.read_csv(EX / "waveforms_fold10_index.csv").head(24).to_csv(d / "w_index.csv",
                                                                     index=False)
    pd.read_csv(EX / "metadata.csv").to_csv(d / "meta.csv", index=False)
    return d


def _args(small: Path, out: Path, *extra: str, model: Path = WEIGHTS) -> list[str]:
    return ["predict", "--model", str(model), "--model-config", str(CONFIG),
            "--ecgs", str(small / "w.npy"), "-o", str(out), "--threads", "1", *extra]


def test_csv_and_parquet_outputs_equal_the_library(small: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, _args(small, tmp_path / "p.csv"))
    assert res.exit_code == 0, res.output
    assert "scored 24 ECGs" in res.output
    assert "ETA" not in res.output  # no progress bar when not on a terminal
    lib = predict(WEIGHTS, CONFIG, small / "w.npy", threads=1)
    assert (tmp_path / "p.csv").read_text() == lib.to_csv(index=False)
    res = runner.invoke(app, _args(small, tmp_path / "p.parquet", "--metadata",
                                   str(small / "meta.csv")))
    assert res.exit_code == 0, res.output
    pq = pd.read_parquet(tmp_path / "p.parquet")
    assert len(pq) == 24 and {"age", "sex", "site", "label_MI", "score:MI"} <= set(pq.columns)
    np.testing.assert_array_equal(pq["score:MI"].to_numpy(), lib["score:MI"].to_numpy())
    manifest = json.loads((tmp_path / "p.parquet.manifest.json").read_text())
    assert manifest["model"]["file"] == "ecgresnet_ptbxl.safetensors"
    assert str(tmp_path) not in json.dumps(manifest) and str(ROOT) not in json.dumps(manifest)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "p.csv", "p.csv.manifest.json", "p.parquet", "p.parquet.manifest.json"]


def test_pickle_model_exits_2_and_writes_nothing(small: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    res = runner.invoke(app, _args(small, tmp_path / "out.csv", model=bad))
    assert res.exit_code == 2
    assert "never unpickles" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out.csv").exists()


def test_missing_leads_exit_2(small: Path, tmp_path: Path) -> None:
    d = tmp_path / "eleven"
    d.mkdir()
    np.save(d / "w.npy", np.load(small / "w.npy")[:, :11])
    side = json.loads((small / "w.json").read_text())
    side["leads"] = side["leads"][:11]
    (d / "w.json").write_text(json.dumps(side))
    (d / "w_index.csv").write_text((small / "w_index.csv").read_text())
    res = runner.invoke(app, _args(d, tmp_path / "o.csv"))
    assert res.exit_code == 2
    assert "missing leads ['V6']" in res.output
    assert not (tmp_path / "o.csv").exists()


def test_bad_output_suffix_and_device(small: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, _args(small, tmp_path / "o.xlsx"))
    assert res.exit_code == 2 and "unknown format '.xlsx'" in res.output
    res = runner.invoke(app, _args(small, tmp_path / "o.csv", "--device", "tpu"))
    assert res.exit_code == 2 and "unknown device 'tpu'" in res.output


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_bar_on_a_terminal(small: Path, tmp_path: Path) -> None:
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecgaudit", *_args(small, tmp_path / "t.csv")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, cwd=ROOT,
        # progress bars are off in CI (env CI): this test is about the terminal case
        env={**{k: v for k, v in os.environ.items() if k != "CI"}, "COLUMNS": "120",
             "TERM": "xterm"},
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "ECGs/s" in text and "ETA" in text
    assert (tmp_path / "t.csv").exists()
