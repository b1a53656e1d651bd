"""The one definition of ECE's equal-mass bins, and the running sum every engine feeds.

ECE cuts a group's ``n`` rows (sorted by score, tied scores negatives first; a bootstrap
row of weight ``w`` counts as ``w`` adjacent copies) into ``bins`` consecutive bins whose
sizes differ by at most one, as ``numpy.array_split`` does: bin ``k`` ends at
:func:`edge` ``(k + 1, q, rem)`` with ``q, rem = divmod(n, bins)``. The ECE numerator is
``sum_b |sum_{rows in b} (y - p)|`` (the sufficient statistic ``ece`` of
:mod:`ecgaudit.metrics._suffstats`; ``assemble`` divides it by ``n``).

:func:`edge` serves numpy arrays (the numpy cell engine and the row-level reference
:func:`ecgaudit.metrics._calibration.ece`) and, compiled, the scans of the compiled and
binned engines, which feed copies into the running sums with :func:`feed`.
"""

from __future__ import annotations

import numpy as np

from ecgaudit.metrics._compile import _ijit

__all__ = ["edge", "feed"]


@_ijit
def edge(k, q, rem):  # type: ignore[no-untyped-def]
    """End (exclusive) of the ``k``-th equal-mass bin: ``k q + min(k, rem)``."""
    return k * q + np.minimum(k, rem)


@_ijit
def feed(pos, w, d, acc, ece, cur, nxt, q, rem):  # type: ignore[no-untyped-def]
    """Add ``w`` copies of residual ``d = y - p`` at position ``pos`` to the running ECE.

    ``acc`` is the residual sum of the current bin ``cur`` (ending at ``nxt``) and ``ece``
    the numerator so far; a bin that fills up adds ``|acc|`` to it. Returns the updated
    ``(acc, ece, cur, nxt)``.
    """
    left = w
    while left > 0:
        m = min(left, nxt - pos)
        if m > 0:
            acc += m * d
            pos += m
            left -= m
        if pos == nxt:
            ece += abs(acc)
            acc = 0.0
            cur += 1
            nxt = edge(cur + 1, q, rem)
    return acc, ece, cur, nxt
