"""Every ```bash and ```python block of README.md, docs/*.md and examples/ci/README.md runs.

Blocks run from a temporary copy of the repository's ``examples/`` and ``reports/templates/``
(the working folder looks
like the repository root, so ``examples/ptbxl/...`` paths work and nothing is written into
the repository), with the shared environment's ``ecgaudit`` first on ``PATH`` and this
checkout on ``PYTHONPATH``; ``CI=1`` keeps progress bars off. A bash block runs under
``bash -euo pipefail`` and must exit 0; a python block runs in a fresh interpreter. The
folder also holds ``results/`` (with ``gate.json``), ``baseline/`` and ``candidate/``:
the audit of ``examples/ptbxl`` that the README's first command writes, so a page that
reads a saved result can say so in one sentence instead of repeating the audit.

A block whose last non-blank line before the fence is ``<!-- docs-test: skip (reason) -->``
is skipped with that reason (e.g. ``make demo``, which builds a virtual environment).
Speed: the documented ``--bootstrap 1000`` (and ``compare``'s default of 1000 paired
replicates) runs as ``--bootstrap 50`` and ``ecgaudit audit`` skips its HTML report
(:data:`FAST`); blocks that run an audit, a
comparison, a model, a report or fine-tuning are marked ``slow``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "examples" / "ci" / "README.md"]
SKIP = re.compile(r"^<!-- docs-test: skip \((?P<reason>[^)]+)\) -->$")
FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)\s*$")
RUN = ("bash", "python")
#: Documented settings replaced by small ones so the suite stays fast (same code paths).
FAST = {"--bootstrap 1000": "--bootstrap 50",
        "ecgaudit compare ": "ecgaudit compare --bootstrap 50 ",  # its default B is 1000
        # the report (18 figures of matplotlib) is most of an audit's time; report rendering
        # through the CLI is tested in test_report_cli.py and test_cli_usability.py
        "ecgaudit audit ": "ecgaudit audit --no-report "}
HEAVY = ("ecgaudit audit", "ecgaudit compare", "ecgaudit predict", "ecgaudit finetune",
         "ecgaudit report", "audit_files(", "ecgaudit.audit(", "finetune_and_audit(",
         "predict(", "render_html(", "write_report(", "report=True", "compare_predictions(",
         "bootstrap_intervals(")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a documentation page."""

    doc: Path
    line: int
    lang: str
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def extract(path: Path) -> list[Block]:
    """Return the fenced blocks of one Markdown file (every language), in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        prev = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
        skip = SKIP.match(prev)
        blocks.append(Block(path, start + 1, m["lang"], "\n".join(lines[start + 1:j]) + "\n",
                            skip["reason"] if skip else None))
        i = j + 1
    return blocks


BLOCKS = [b for doc in DOCS for b in extract(doc) if b.lang in RUN]


def _param(block: Block) -> object:
    marks = [pytest.mark.slow] if any(h in block.code for h in HEAVY) else []
    return pytest.param(block, id=block.id, marks=marks)


def test_marker_and_fences_are_well_formed() -> None:
    # a misspelt marker would silently run (or not skip) a block: every marker must parse
    for doc in DOCS:
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if "docs-test" in line:
                assert SKIP.match(line.strip()), f"{doc.name}:{n}: malformed marker {line!r}"
    # a command block must say its language; unlabelled fences are for text only
    for doc in DOCS:
        for b in extract(doc):
            if b.lang == "":
                first = b.code.lstrip().split(" ", 1)[0]
                assert first not in ("ecgaudit", "pip", "make", "python", "import", "from"), (
                    f"{b.id}: label this block ```bash or ```python (or ```text)")


def test_extract_finds_blocks_and_skip_markers(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("x\n<!-- docs-test: skip (needs a GPU) -->\n\n```bash\nnvidia-smi\n```\n"
                    "```python\nprint(1)\n```\n```text\nls\n```\n", encoding="utf-8")
    got = extract(page)
    assert [(b.lang, b.skip, b.code) for b in got] == [
        ("bash", "needs a GPU", "nvidia-smi\n"), ("python", None, "print(1)\n"),
        ("text", None, "ls\n")]
    assert len(BLOCKS) >= 10


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import ecgaudit
    from ecgaudit.policy import evaluate, load_policy

    root = tmp_path_factory.mktemp("docs")
    shutil.copytree(ROOT / "examples", root / "examples",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "reports" / "templates", root / "reports" / "templates")
    x = root / "examples" / "ptbxl"
    result = ecgaudit.audit_files(x / "predictions.csv", x / "audit.yaml",
                                  metadata=x / "metadata.csv")
    for name in ("results", "baseline", "candidate"):
        result.save(root / name)
    gate = evaluate(result, load_policy(x / "policy.yaml", result))
    (root / "results" / "gate.json").write_text(gate.to_json(), encoding="utf-8")
    return root


def _env(root: Path) -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "CI": "1", "HOME": str(root)}
    env.pop("ECGAUDIT_DEBUG", None)
    return env


@pytest.mark.parametrize("block", [_param(b) for b in BLOCKS])
def test_documented_block_runs(block: Block, workspace: Path) -> None:
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    code = block.code
    for documented, small in FAST.items():
        code = code.replace(documented, small)
    cmd = (["bash", "-euo", "pipefail", "-c", code] if block.lang == "bash"
           else [sys.executable, "-c", code])
    out = subprocess.run(cmd, cwd=workspace, env=_env(workspace), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, (
        f"{block.id} exited {out.returncode}\n--- code\n{code}\n--- stdout\n"
        f"{out.stdout[-3000:]}\n--- stderr\n{out.stderr[-3000:]}")


@pytest.mark.slow
def test_ci_workflow_steps_run(workspace: Path, tmp_path: Path) -> None:
    """Run the workflow's own scripts on a repository laid out as the workflow expects."""
    import yaml

    x = workspace / "examples" / "ptbxl"
    layout = {"predictions/candidate.csv": x / "predictions.csv",
              "predictions/patients.csv": x / "metadata.csv",
              "fairness/audit.yaml": x / "audit.yaml", "fairness/policy.yaml": x / "policy.yaml",
              "fairness/no-regression.yaml": workspace / "examples/ci/no-regression.yaml",
              "fairness/baseline/results.json": workspace / "baseline/results.json",
              "fairness/baseline/predictions.csv": x / "predictions.csv"}
    for dest, src in layout.items():
        (tmp_path / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tmp_path / dest)
    flow = yaml.safe_load((ROOT / "examples/ci/fairness-gate.yml").read_text(encoding="utf-8"))
    steps = {s.get("name", ""): s for s in flow["jobs"]["gate"]["steps"]}
    install = next(s for n, s in steps.items() if n.startswith("Install"))
    assert "./.ecgaudit" in install["run"] and "pip install ecgaudit" not in install["run"]
    compare = next(s for s in steps.values() if s.get("id") == "compare")
    assert "steps.gate.outcome == 'success'" in compare["if"]  # runs whatever the gate says
    outputs: dict[str, str] = {}
    for step in flow["jobs"]["gate"]["steps"]:
        if "run" not in step or step is install:
            continue
        script = step["run"].replace("--junit results/compare.xml",
                                     "--bootstrap 50 --junit results/compare.xml")
        for key, value in outputs.items():
            script = script.replace("${{ steps." + key + ".outputs.code }}", value)
        out_file = tmp_path / "github_output"
        out_file.write_text("", encoding="utf-8")
        done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, timeout=600,
                              env={**_env(workspace), "GITHUB_OUTPUT": str(out_file)},
                              capture_output=True, text=True)
        if step.get("name", "").startswith("Stop"):
            # the demo policy fails on PTB-XL, so the release must be stopped here
            assert done.returncode != 0, done.stdout
            assert f"gate exit {outputs['gate']}" in done.stdout, done.stdout
            continue
        assert done.returncode == 0, (step.get("name"), done.stderr[-2000:])
        for line in out_file.read_text(encoding="utf-8").splitlines():
            outputs[step["id"]] = line.split("=", 1)[1]
    assert outputs["gate"] in ("1", "3") and outputs["compare"] in ("0", "1", "3")
    assert (tmp_path / "results/gate.xml").exists() and (tmp_path / "results/compare.xml").exists()
