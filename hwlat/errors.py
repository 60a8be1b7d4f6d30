"""How every `hwlat` command fails: one line on stderr, exit code 1.

Set HWLAT_DEBUG=1 for the full traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

import typer

from latency_service.client import HwlatError
from profiler.errors import MeasureError


class CliError(Exception):
    """An error a user can act on; its message says what to do next."""


def fail(message: str) -> NoReturn:
    raise CliError(message)


def run_cli(app: Callable[..., object], argv: list[str] | None = None) -> int:
    """Run a typer app's command and turn known errors into one line + exit code 1.

    (typer vendors its own click, so its public exception types are used here.)"""
    try:
        app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 1
    except typer.TyperException as exc:  # usage errors: bad option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {exc.format_message()}", file=sys.stderr)
        return 1
    except (CliError, ValueError, OSError, MeasureError, HwlatError) as exc:
        if os.environ.get("HWLAT_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
