"""How every `hwlat` command fails: one line on stderr, exit code 1.

Set HWLAT_DEBUG=1 for the full traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

import click


class CliError(Exception):
    """An error a user can act on; its message says what to do next."""


def fail(message: str) -> NoReturn:
    raise CliError(message)


def run_cli(app: Callable[..., object], argv: list[str] | None = None) -> int:
    """Run a typer/click app and turn known errors into one line + exit code 1."""
    try:
        app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 1
    except click.exceptions.Abort:
        print("error: aborted", file=sys.stderr)
        return 1
    except (CliError, ValueError, OSError) as exc:
        if os.environ.get("HWLAT_DEBUG"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
