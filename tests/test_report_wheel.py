"""The report templates ship inside the wheel: build it, install it aside, render from it.

In the repository they live in the top-level ``reports/templates/``; ``setup.py`` maps that
folder into the wheel as ``ecgaudit/reports/templates/``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RENDER = """
import json, sys
import ecgaudit
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.reports import write_report
frame = make_synthetic_cohort(800, seed=5, tasks=("hf",)).frame
result = ecgaudit.audit(frame, {
    "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
    "attributes": {"race": {}, "sex": {}},
    "threshold": {"rule": "fixed", "value": 0.3},
})
path = write_report(result, sys.argv[1])
from ecgaudit.reports._render import bundled_template_dir
print(json.dumps({"module": ecgaudit.__file__, "html": str(path),
                  "templates": str(bundled_template_dir())}))
"""


@pytest.mark.slow
def test_report_renders_from_installed_wheel(tmp_path: Path) -> None:
    # Build from a copy so the shared working tree gets no build/ or egg-info litter.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src)
    shutil.copytree(ROOT / "ecgaudit", src / "ecgaudit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # the templates live at the top level (reports/templates) and map into the package
    shutil.copytree(ROOT / "reports" / "templates", src / "reports" / "templates")
    dist = tmp_path / "dist"
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(dist), str(src)], check=True, env=env, timeout=300)
    wheel = next(dist.glob("ecgaudit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "ecgaudit/reports/templates/report.html.j2" in names
    assert "ecgaudit/reports/templates/report.css" in names

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                    "--target", str(site), str(wheel)], check=True, env=env, timeout=300)
    run_env = {**env, "PYTHONPATH": str(site), "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, "-c", RENDER, str(tmp_path / "report.html")],
                         cwd=tmp_path, env=run_env, capture_output=True, text=True,
                         timeout=300, check=True)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(info["module"]).resolve().is_relative_to(site.resolve())
    assert info["templates"] == str((site / "ecgaudit" / "reports" / "templates").resolve())
    html = Path(info["html"]).read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    for marker in ('id="summary"', 'id="disparities"', 'id="tripod"', "@media print", "<svg"):
        assert marker in html
