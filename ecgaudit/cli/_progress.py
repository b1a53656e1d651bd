"""Progress bars for long commands: drawn on a terminal, silent in CI, pipes and ``--quiet``.

The library reports progress through callbacks (``progress(step, index, total)`` for the
audit steps, ``progress(done, total)`` for inference batches); this module renders them
with rich on standard error. rich is imported only when a bar is actually drawn.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["progress_enabled", "step_progress"]

_FALSE = ("", "0", "false", "no")


def progress_enabled(quiet: bool = False) -> bool:
    """Return True when progress bars should be drawn.

    Bars are drawn only when standard error is an interactive terminal, the ``CI``
    environment variable is unset (or ``0``/``false``) and ``--quiet`` was not given.
    """
    if quiet or os.environ.get("CI", "").strip().lower() not in _FALSE:
        return False
    return sys.stderr.isatty()


class _StepBar:
    """One rich bar over the audit steps; each finished step stays on screen with its time."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(),
            console=Console(stderr=True, highlight=False), transient=True,
        )
        self.task = self.progress.add_task("audit", total=None)
        self.current: tuple[str, float] | None = None

    def _finish_current(self) -> None:
        if self.current is not None:
            step, start = self.current
            self.progress.console.print(f"  done: {step} ({time.perf_counter() - start:.1f} s)")
            self.current = None

    def __call__(self, step: str, index: int, total: int) -> None:
        self._finish_current()
        if step == "done":
            self.progress.update(self.task, completed=total, total=total)
            return
        self.current = (step, time.perf_counter())
        self.progress.update(self.task, description=step, completed=index - 1, total=total)


@contextlib.contextmanager
def step_progress(quiet: bool = False) -> Iterator[Callable[[str, int, int], None] | None]:
    """Yield an audit-step progress callback drawing a bar, or None when silent.

    Parameters
    ----------
    quiet : bool
        ``--quiet``: never draw.
    """
    if not progress_enabled(quiet):
        yield None
        return
    bar: Any = _StepBar()
    bar.progress.start()
    try:
        yield bar
    finally:
        bar.progress.stop()
