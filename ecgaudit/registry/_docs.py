"""The metrics tables of ``docs/metrics.md``, generated from the registry.

``python -m ecgaudit.registry.docs docs/metrics.md`` rewrites the part of the page between
:data:`BEGIN` and :data:`END`; ``tests/test_registry.py`` fails when the page and the
registry disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ecgaudit.registry._spec import OUTCOMES, MetricRegistry, MetricSpec

__all__ = ["BEGIN", "END", "metrics_markdown", "update_page"]

BEGIN = "<!-- metrics-table: generated from ecgaudit.registry, do not edit by hand -->"
END = "<!-- metrics-table: end -->"
_TITLES = {"binary": "Binary outcomes", "continuous": "Continuous outcomes",
           "survival": "Survival outcomes"}
_COLUMNS = ("metric", "label", "direction", "needs", "intervals", "disparity test",
            "reference", "definition")


def _direction(spec: MetricSpec) -> str:
    if spec.direction == "target":
        return f"target {spec.target:g}"
    return {"higher": "higher is better", "lower": "lower is better"}.get(
        spec.direction, "none")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _row(spec: MetricSpec) -> str:
    cells = (f"`{spec.name}`", spec.label, _direction(spec), spec.needs_text,
             ", ".join(f"`{m}`" for m in spec.intervals), f"`{spec.disparity_test}`",
             spec.reference_name, spec.definition)
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def metrics_markdown(registry: MetricRegistry) -> str:
    """Return the Markdown tables of every registered metric, one section per outcome type.

    Parameters
    ----------
    registry : MetricRegistry
        The registry to document.

    Returns
    -------
    str
        The text between :data:`BEGIN` and :data:`END` (without them).
    """
    parts: list[str] = []
    header = "| " + " | ".join(_COLUMNS) + " |\n|" + "---|" * len(_COLUMNS)
    for outcome in OUTCOMES:
        for table in ("metrics", "ranking"):
            specs = registry.select(outcome, table=table)
            if not specs:
                continue
            title = _TITLES[outcome] + (" (ranking table)" if table == "ranking" else "")
            parts.append(f"### {title}\n\n{header}\n" + "\n".join(_row(s) for s in specs))
    return "\n\n".join(parts)


def update_page(path: Path, registry: MetricRegistry) -> str:
    """Return the page text at ``path`` with its generated section regenerated.

    Parameters
    ----------
    path : Path
        A Markdown page holding one :data:`BEGIN` ... :data:`END` section.
    registry : MetricRegistry
        The registry.

    Returns
    -------
    str
        The new page text (the caller writes it).
    """
    text = path.read_text(encoding="utf-8")
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise ValueError(f"{path}: needs the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n\n{metrics_markdown(registry)}\n\n{END}{tail}"


def main(argv: list[str]) -> int:
    """Rewrite the generated section of the page named in ``argv`` (``--check``: compare)."""
    from ecgaudit.registry import REGISTRY

    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"] or [Path("docs/metrics.md")]
    stale = []
    for path in paths:
        new = update_page(path, REGISTRY)
        if new != path.read_text(encoding="utf-8"):
            stale.append(str(path))
            if not check:
                path.write_text(new, encoding="utf-8")
    if check and stale:
        print(f"out of date with the registry: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0
