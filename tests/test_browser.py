"""Real-browser checks of the HTML report: headless Debian Chromium driven by Playwright.

The report is opened from a file with the network disabled; it must load with no console
errors, no failed or outgoing requests, every figure drawn at a non-zero size, readable at
200% zoom, and print to a PDF with a sane page count. Injected markup must never run.
"""

from __future__ import annotations

import re
import shutil
import statistics
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ecgaudit
from ecgaudit.datasets import make_synthetic_cohort
from ecgaudit.reports import write_report

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
PTBXL = ROOT / "examples" / "ptbxl"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EVIL = '<script>window.pwned=1</script>"><img src=x onerror=alert(1)>{{7*7}}$x$'

if not Path(CHROMIUM).exists():  # pragma: no cover - set up by `make system-deps`
    # A missing browser is a broken set-up, never a silent skip: `make test` installs it.
    pytest.fail("Chromium not installed: run `make system-deps` (part of `make test`)",
                pytrace=False)
from playwright import sync_api  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    pw = sync_api.sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


@pytest.fixture(scope="module")
def ptbxl_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = ecgaudit.audit_files(PTBXL / "predictions.csv", PTBXL / "audit.yaml",
                                  metadata=PTBXL / "metadata.csv")
    return write_report(result, tmp_path_factory.mktemp("browser") / "report.html")


class Page:
    """A page opened offline, recording console messages, errors, requests and dialogs."""

    def __init__(self, browser: Any, path: Path, **context: Any) -> None:
        self.context = browser.new_context(offline=True, **context)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.outgoing: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

        def route(r: Any) -> None:
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                self.outgoing.append(r.request.url)
                r.abort()

        self.page.route("**/*", route)
        self.page.goto(path.resolve().as_uri(), wait_until="load")

    def close(self) -> None:
        self.context.close()


#: Smallest rendered size of every figure's text, in CSS px, per figure id.
FIGURE_TEXT_PX = (
    "() => Array.from(document.querySelectorAll('figure svg')).map(s => {"
    "const k = s.getBoundingClientRect().width / s.viewBox.baseVal.width;"
    "const px = Array.from(s.querySelectorAll('text')).map("
    "t => parseFloat(getComputedStyle(t).fontSize) * k);"
    "return [s.id, Math.min(...px)]; })")


def pdf_page_contents(pdf: bytes) -> list[bytes]:
    """Return each page's decompressed content stream, in page order (Skia's PDF layout)."""
    heads: dict[int, bytes] = {}
    streams: dict[int, bytes] = {}
    for m in re.finditer(rb"(\d+) 0 obj\s*", pdf):
        start = m.end()
        end = pdf.find(b"endobj", start)
        st = pdf.find(b"stream", start, end)
        heads[int(m[1])] = head = pdf[start: st if st >= 0 else end]
        if st >= 0:
            s0 = st + 6 + (2 if pdf[st + 6: st + 8] == b"\r\n" else 1)
            data = pdf[s0: s0 + int(re.search(rb"/Length (\d+)", head)[1])]
            streams[int(m[1])] = zlib.decompress(data) if b"/FlateDecode" in head else data

    def walk(n: int) -> Iterator[int]:
        if re.search(rb"/Type /Pages\b", heads[n]):
            kids = re.search(rb"/Kids \[([^\]]*)\]", heads[n])[1]
            for k in re.findall(rb"(\d+) 0 R", kids):
                yield from walk(int(k))
        else:
            yield n

    root = next(n for n, h in heads.items()
                if re.search(rb"/Type /Pages\b", h) and b"/Parent" not in h)
    pages = []
    for n in walk(root):
        c = re.search(rb"/Contents (\d+) 0 R", heads[n])
        pages.append(streams.get(int(c[1]), b"") if c else b"")
    return pages


def test_report_renders_offline_without_errors(browser: Any, ptbxl_report: Path,
                                               tmp_path: Path) -> None:
    p = Page(browser, ptbxl_report, viewport={"width": 1280, "height": 900})
    try:
        sizes = p.page.evaluate(
            "() => Array.from(document.querySelectorAll('figure svg')).map(s => {"
            "const r = s.getBoundingClientRect(); return [s.id, r.width, r.height]; })")
        assert len(sizes) == 18  # forest plot, heat map, reliability curves x 6 tasks
        assert all(w > 100 and h > 100 for _, w, h in sizes), sizes
        # every figure has a text alternative the accessibility tree exposes
        labelled = p.page.evaluate(
            "() => Array.from(document.querySelectorAll('figure svg')).every(s => "
            "s.getAttribute('role') === 'img' && s.querySelector('title').textContent.length > 5"
            " && s.querySelector('desc').textContent.length > 20)")
        assert labelled
        # table headers are scoped for screen readers
        unscoped = p.page.evaluate(
            "() => Array.from(document.querySelectorAll('th')).filter(t => !t.scope).length")
        assert unscoped == 0
        shot = tmp_path / "report.png"
        p.page.screenshot(path=str(shot), full_page=False)
        assert shot.stat().st_size > 20_000
        # figure text at its natural size on a desktop: >= 10 CSS px everywhere (8 pt legends)
        small = [(i, px) for i, px in p.page.evaluate(FIGURE_TEXT_PX) if px < 10]
        assert small == []
        # task selector: plain anchors that move to the task's section without JavaScript
        p.page.click("nav.task-nav >> text=CRBBB")
        assert p.page.evaluate("() => location.hash").endswith("-performance")
        top = p.page.evaluate(
            "() => document.querySelector(location.hash).getBoundingClientRect().top")
        assert abs(top) < 5
    finally:
        p.close()
    assert p.console == [] and p.errors == []
    assert p.failed == [] and p.outgoing == []


def test_report_readable_at_200_percent_zoom(browser: Any, ptbxl_report: Path) -> None:
    # 200% zoom of a 1280 px window = a 640 CSS px viewport at device scale 2
    p = Page(browser, ptbxl_report, viewport={"width": 640, "height": 800},
             device_scale_factor=2)
    try:
        overflow = p.page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1  # wide tables scroll inside their own box, the page does not
        widths = p.page.evaluate(
            "() => Array.from(document.querySelectorAll('figure svg')).map("
            "s => s.getBoundingClientRect().width)")
        assert all(0 < w <= 640 for w in widths)
        font = p.page.evaluate(
            "() => parseFloat(getComputedStyle(document.querySelector('td.num')).fontSize)")
        assert font >= 12
    finally:
        p.close()
    assert p.console == [] and p.errors == []


def test_report_on_a_phone(browser: Any, ptbxl_report: Path, tmp_path: Path) -> None:
    # an iPhone-sized screen: 390 CSS px wide at device scale 3
    p = Page(browser, ptbxl_report, viewport={"width": 390, "height": 844},
             device_scale_factor=3, is_mobile=True, has_touch=True)
    try:
        overflow = p.page.evaluate(
            "() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1  # figures and tables scroll inside their own boxes
        # every figure's text stays readable (>= 9 CSS px): figures scroll, never shrink more
        sizes = p.page.evaluate(FIGURE_TEXT_PX)
        assert len(sizes) == 18
        assert all(px >= 9 for _, px in sizes), sorted(sizes, key=lambda x: x[1])[:3]
        font = p.page.evaluate(
            "() => parseFloat(getComputedStyle(document.querySelector('td.num')).fontSize)")
        assert font >= 12
        p.page.locator("figure").first.scroll_into_view_if_needed()
        shot = tmp_path / "phone.png"
        p.page.screenshot(path=str(shot))
        assert shot.stat().st_size > 20_000
    finally:
        p.close()
    assert p.console == [] and p.errors == []


def test_report_print_text_sizes(browser: Any, ptbxl_report: Path) -> None:
    # print layout: A4 minus the 12 mm side margins is 186 mm = 703 CSS px
    p = Page(browser, ptbxl_report, viewport={"width": 703, "height": 1000})
    try:
        p.page.emulate_media(media="print")
        est, ci = p.page.evaluate(
            "() => { const c = document.querySelector('td.num .ci');"
            "return [parseFloat(getComputedStyle(c.parentElement.querySelector('.est')).fontSize),"
            "parseFloat(getComputedStyle(c).fontSize)]; }")
        assert ci < est  # an interval never prints larger than its estimate
        # nothing wider than the page, else the browser shrinks every printed page to fit
        assert p.page.evaluate("() => document.documentElement.scrollWidth") <= 704
        assert est * 0.75 >= 7  # table text >= 7 pt
        heat = p.page.evaluate(FIGURE_TEXT_PX.replace("'figure svg'", "'svg[id$=heatmap]'"))
        assert len(heat) == 6
        assert all(px * 0.75 >= 8 for _, px in heat), heat  # heat-map values >= 8 pt printed
        config = p.page.evaluate(
            "() => document.querySelector('pre.config').closest('section').id")
        assert config == "config"  # the config dump is an appendix, not in section 9
    finally:
        p.close()


def test_report_prints_to_pdf(browser: Any, ptbxl_report: Path, tmp_path: Path) -> None:
    p = Page(browser, ptbxl_report)
    try:
        p.page.emulate_media(media="print")
        hidden = p.page.evaluate(
            "() => getComputedStyle(document.querySelector('nav.toc')).display")
        assert hidden == "none"
        pdf = p.page.pdf(format="A4", print_background=True)
    finally:
        p.close()
    (tmp_path / "report.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))
    # six tasks' tables and figures flowing section after section
    assert 12 <= pages <= 100, pages
    contents = pdf_page_contents(pdf)
    assert len(contents) == pages
    # no near-empty page: every page but the last carries at least a fifth of a median page
    median = statistics.median(len(c) for c in contents)
    sparse = [i + 1 for i, c in enumerate(contents[:-1]) if len(c) < 0.2 * median]
    assert sparse == [], (sparse, [len(c) for c in contents])
    assert p.console == [] and p.errors == []


def test_injected_markup_is_escaped_and_never_runs(browser: Any, tmp_path: Path) -> None:
    frame = make_synthetic_cohort(1500, seed=3, tasks=("hf",)).frame
    frame.loc[frame["race"] == "Asian", "race"] = EVIL
    frame = frame.rename(columns={"sex": f"sex{EVIL}"})
    config = {
        "tasks": [{"name": "hf", "label": "y_hf", "score": "p_hf"}],
        "attributes": {f"race{EVIL}": {"column": "race"}, "sex": {"column": f"sex{EVIL}"}},
        "threshold": {"rule": "fixed", "value": 0.3},
        "context": {"model_name": f"model {EVIL}", "intended_use": f"use {EVIL}",
                    "equity_context": f"</p></section>{EVIL}"},
    }
    result = ecgaudit.audit(frame, config)
    path = write_report(result, tmp_path / "evil.html")
    html = path.read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "{{7*7}}" in html  # shown literally, never evaluated by the template engine
    p = Page(browser, path)
    try:
        state = p.page.evaluate(
            "() => [window.pwned === undefined, document.scripts.length, "
            "document.images.length, document.body.innerText.includes('{{7*7}}'),"
            "document.body.innerText.includes('<script>window.pwned=1</script>')]")
    finally:
        p.close()
    assert state == [True, 0, 0, True, True]
    assert p.dialogs == [] and p.errors == [] and p.console == []
