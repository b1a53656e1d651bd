"""An institution's own report templates (``--templates DIR``): what they may and may not do."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import ecgaudit
from ecgaudit.cli import app
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.errors import InputError
from ecgaudit.reports import render_html
from ecgaudit.reports._render import CSP_META, bundled_template_dir

EVIL = "<script>alert(1)</script>"
HEAD = "<!DOCTYPE html><html><head><title>{{ v.title }}</title></head><body>"


@pytest.fixture(scope="module")
def result() -> ecgaudit.AuditResult:
    frame = make_synthetic_cohort(600, seed=8, tasks=("hf",)).frame
    frame.loc[frame["race"] == "Asian", "race"] = EVIL
    return ecgaudit.audit(frame, {
        "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
        "attributes": {"race": {}}, "threshold": {"rule": "fixed", "value": 0.3},
        "context": {"model_name": EVIL}})


def _folder(tmp_path: Path, body: str, name: str = "report.html.j2") -> Path:
    folder = tmp_path / "tpl"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(body, encoding="utf-8")
    return folder


def test_bundled_templates_live_at_the_top_level() -> None:
    root = Path(__file__).resolve().parents[1]
    assert bundled_template_dir() == root / "reports" / "templates"
    assert not (root / "ecgaudit" / "reports" / "templates").exists()


def test_custom_template_renders_escaped_with_csp(result, tmp_path: Path) -> None:
    folder = _folder(tmp_path, HEAD + "<h1>Clinic X</h1><p>{{ v.title }}</p>"
                     "{% for t in v.tasks %}{{ t.forest_svg }}{% endfor %}</body></html>")
    html = render_html(result, templates=folder)
    assert "<h1>Clinic X</h1>" in html and "<script>" not in html
    assert "&lt;script&gt;" in html
    assert html.count(CSP_META) == 1  # added although the template left it out
    assert "<svg" in html  # figures arrive as markup, no |safe needed


def test_custom_css_overrides_only_that_file(result, tmp_path: Path) -> None:
    folder = _folder(tmp_path, "body { color: #123456; }", name="report.css")
    html = render_html(result, templates=folder)
    assert "#123456" in html and 'id="disparities"' in html  # bundled report.html.j2


@pytest.mark.parametrize("body", [
    "{% autoescape false %}{{ v.title }}{% endautoescape %}",
    "{{ v.title|safe }}",
    "{% filter safe %}{{ v.title }}{% endfilter %}",
])
def test_template_cannot_turn_escaping_off(result, tmp_path: Path, body: str) -> None:
    folder = _folder(tmp_path, HEAD + body + "</body></html>")
    with pytest.raises(InputError, match=r"autoescap|mark text safe"):
        render_html(result, templates=folder)


def test_template_cannot_read_outside_its_folder(result, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    for ref in ("../secret.txt", str(secret), "/etc/passwd"):
        folder = _folder(tmp_path, HEAD + '{% include "' + ref + '" %}</body></html>')
        with pytest.raises(InputError, match="not found"):
            render_html(result, templates=folder)
    # nor through a symbolic link inside the folder
    folder = _folder(tmp_path, HEAD + '{% include "link.txt" %}</body></html>')
    (folder / "link.txt").symlink_to(secret)
    with pytest.raises(InputError, match="not found"):
        render_html(result, templates=folder)


def test_undefined_variable_is_an_error(result, tmp_path: Path) -> None:
    folder = _folder(tmp_path, HEAD + "{{ v.no_such_key }}</body></html>")
    with pytest.raises(InputError, match="no_such_key"):
        render_html(result, templates=folder)


def test_cli_templates_option(result, tmp_path: Path) -> None:
    result.save(tmp_path / "res")
    folder = _folder(tmp_path, HEAD + "<p>institutional</p></body></html>")
    out = tmp_path / "r.html"
    runner = CliRunner()
    res = runner.invoke(app, ["report", str(tmp_path / "res"), "-o", str(out),
                              "--templates", str(folder)])
    assert res.exit_code == 0, res.output
    assert "institutional" in out.read_text(encoding="utf-8")
    res = runner.invoke(app, ["report", str(tmp_path / "res"), "-o", str(out),
                              "--templates", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "not a folder" in res.output
