"""What every `hwlat` command shares: the one way a command fails, the options a client
command takes, and how results are printed. It imports nothing of hwlat's packages, so
any command module can use it without pulling in another's dependencies."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table


class CliError(Exception):
    """An error a user can act on; its message says what to do next."""


def fail(message: str) -> NoReturn:
    """One line on stderr and exit code 1 (`hwlat.cli.run_cli` prints it)."""
    raise CliError(message)


Server = Annotated[str, typer.Option("--server", envvar="HWLAT_SERVER", help="Service URL.")]
Admin = Annotated[
    str | None,
    typer.Option(
        "--admin-token", envvar="HWLAT_ADMIN_TOKEN", help="Admin token (default: the local one)."
    ),
]
Token = Annotated[
    str | None, typer.Option("--token", envvar="HWLAT_TOKEN", help="Agent or read token.")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DEFAULT_SERVER = "http://127.0.0.1:8000"


def emit(data: Any, as_json: bool, table: Table | None = None) -> None:
    """`data` as JSON with --json, else the table (when there is one)."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    elif table is not None:
        Console().print(table)


def parse_options(items: list[str]) -> dict[str, int]:
    """--option NAME=INT values as a dict; a malformed one is a CLI error."""
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value.lstrip("-").isdigit():
            fail(f"--option: expected NAME=INT, got {item!r}")
        out[name] = int(value)
    return out


def write_atomic(out: Path, text: str) -> None:
    """Write `text` to `out` through a temporary file: a reader never sees half of it."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
