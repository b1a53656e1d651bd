"""Regenerate (or ``--check``) the metrics tables of ``docs/metrics.md`` from the registry.

Usage: ``python -m ecgaudit.registry.docs [--check] [docs/metrics.md]``.
"""

from __future__ import annotations

import sys

from ecgaudit.registry._docs import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
