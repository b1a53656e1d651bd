"""Progress of a long audit, reported step by step through a callback.

The library never prints: an audit calls ``progress(step, index, total)`` when a step
starts (``index`` counts from 1) and ``progress("done", total, total)`` at the end; the
command line draws the bar. A callback that raises stops the audit (nothing is written).
"""

from __future__ import annotations

from collections.abc import Callable

#: ``progress(step, index, total)``: the step's description, its number (1-based), the count.
ProgressCallback = Callable[[str, int, int], None]

__all__ = ["ProgressCallback", "Steps", "audit_steps"]


def audit_steps(*, bootstrap: int, read_files: bool) -> list[str]:
    """Return the step descriptions of one audit, in order.

    Parameters
    ----------
    bootstrap : int
        Bootstrap replicates B (0: no bootstrap step).
    read_files : bool
        Whether the audit starts by reading its input files.

    Returns
    -------
    list of str
    """
    steps = ["reading input files"] if read_files else []
    steps += ["validating and joining inputs", "building groups and intersections",
              "point estimates and closed-form intervals"]
    if bootstrap > 0:
        steps.append(f"bootstrap: {bootstrap} replicates")
    steps += ["small-cell suppression and p-value adjustment",
              "reliability curves, calibration suite and power"]
    return steps


class Steps:
    """Announce the steps of :func:`audit_steps` one after the other.

    Parameters
    ----------
    callback : callable or None
        The user's ``progress(step, index, total)``; None reports nothing.
    steps : list of str
        The step descriptions, in order.
    """

    def __init__(self, callback: ProgressCallback | None, steps: list[str]) -> None:
        self._callback = callback
        self._steps = steps
        self._next = 0

    def next(self) -> None:
        """Announce the next step."""
        if self._callback is not None and self._next < len(self._steps):
            self._callback(self._steps[self._next], self._next + 1, len(self._steps))
        self._next += 1

    def relabel(self, prefix: str, text: str) -> None:
        """Replace the description of the (not yet announced) step starting with ``prefix``.

        Parameters
        ----------
        prefix : str
            Start of the step's description (e.g. ``"bootstrap:"``).
        text : str
            The new description (e.g. once the input size decided the bootstrap mode).
        """
        for i in range(self._next, len(self._steps)):
            if self._steps[i].startswith(prefix):
                self._steps[i] = text

    def done(self) -> None:
        """Announce the end of the audit."""
        if self._callback is not None:
            self._callback("done", len(self._steps), len(self._steps))
