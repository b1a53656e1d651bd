"""The Typer application and the one place where errors become exit codes."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
import typer.core

from ecgaudit._text import visible
from ecgaudit.errors import EcgAuditError, InputError

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes (also documented in the README).
EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
EXIT_INCONCLUSIVE = 3

# Plain (click) help: typer 0.20 puts a backslash before "[required]" and "[default: ...]"
# (an escape for rich's HTML export) whenever rich is importable, even with
# rich_markup_mode=None; help texts must read "[required]".
typer.core.HAS_RICH = False

app = typer.Typer(
    name="ecgaudit",
    help="Audit ECG models for subgroup performance, calibration and fairness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def echo_err(message: str) -> None:
    """Print a message to standard error, control and escape sequences made visible."""
    typer.echo(visible(message), err=True)


def _show_warning(message: Warning | str, category: type[Warning], filename: str,
                  lineno: int, file: Any = None, line: str | None = None) -> None:
    """Print a Python warning on one line, escape sequences made visible."""
    echo_err(f"warning: {visible(message)} ({category.__name__})")


def cli_errors(func: F) -> F:
    """Map library errors to exit codes; never show a raw traceback.

    ``InputError`` (bad files, config, data) -> exit 2; any other ``EcgAuditError`` -> 1;
    an unexpected exception -> 1 with a one-line message (set ``ECGAUDIT_DEBUG=1`` to see
    the traceback).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except InputError as err:
            echo_err(f"error: {err}")
            raise typer.Exit(EXIT_USAGE) from None
        except OSError as err:  # a file the user named cannot be read or written
            where = f" '{Path(err.filename).name}'" if err.filename else ""
            echo_err(f"error: cannot access{where}: {err.strerror or err}. Check the path "
                     "and its permissions")
            raise typer.Exit(EXIT_USAGE) from None
        except EcgAuditError as err:
            echo_err(f"error: {err}")
            raise typer.Exit(EXIT_FAIL) from None
        except KeyboardInterrupt:
            echo_err("interrupted; no output was left half-written")
            raise typer.Exit(130) from None
        except Exception as err:
            if os.environ.get("ECGAUDIT_DEBUG"):
                raise
            echo_err(
                f"internal error: {type(err).__name__}: {str(err)[:500]}\n"
                "This is a bug in ecgaudit; re-run with ECGAUDIT_DEBUG=1 for details."
            )
            raise typer.Exit(EXIT_FAIL) from None

    return wrapper  # type: ignore[return-value]


def is_terminal() -> bool:
    """Return True when standard error is an interactive terminal (progress bars)."""
    return sys.stderr.isatty()


def _show_version(value: bool) -> None:
    if value:
        from ecgaudit import __version__

        typer.echo(f"ecgaudit {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, expose_value=False,
                                 callback=_show_version, help="Show the version and exit."),
) -> None:
    """Audit ECG models for subgroup performance, calibration and fairness.

    Start with `ecgaudit audit --help`; docs: README.md and docs/ in the repository.
    """
    warnings.showwarning = _show_warning
