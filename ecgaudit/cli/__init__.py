"""Command-line interface: a thin Typer shell over the library.

Each command lives in its own private module and registers itself on :data:`app`.
"""

from __future__ import annotations

from ecgaudit.cli import (
    _audit,  # noqa: F401  (registers `audit`)
    _export,  # noqa: F401  (registers `export`)
    _finetune,  # noqa: F401  (registers `finetune`)
    _gate,  # noqa: F401  (registers `gate`, `compare`)
    _predict,  # noqa: F401  (registers `predict`)
    _report,  # noqa: F401  (registers `report`)
    _summarize,  # noqa: F401  (registers `summarize`)
)
from ecgaudit.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Run the ``ecgaudit`` command."""
    app()
