"""The one console command, `hwlat`. Each command group lives in `hwlat/commands/`; this
file only puts them together and turns known errors into one line and exit code 1."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import typer

from hwlat import __version__
from hwlat.commands import (
    agent,
    db,
    demo,
    devices,
    estimate,
    jobs,
    profile,
    search,
    serve,
    spaces,
    tables,
    train,
    validate,
)
from hwlat.commands.common import CliError
from latency_service.client import HwlatError
from profiler.errors import MeasureError

app = typer.Typer(
    name="hwlat",
    help="Hardware-latency lookup tables for hardware-aware NAS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(spaces.spaces_app, name="spaces")
app.command("profile")(profile.profile)
app.command("serve")(serve.serve)
app.add_typer(db.db_app, name="db")
app.add_typer(devices.devices_app, name="devices")
app.add_typer(jobs.jobs_app, name="jobs")
app.command("query")(tables.query)
app.add_typer(tables.lut_app, name="lut")
app.command("estimate")(estimate.estimate)
app.command("agent")(agent.agent)
app.command("train")(train.train)
app.command("validate")(validate.validate)
app.command("search")(search.search)
app.command("demo")(demo.demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hwlat {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Hardware-latency lookup tables for hardware-aware NAS."""


def run_cli(command: Callable[..., object], argv: list[str] | None = None) -> int:
    """Run a click command and turn known errors into one line + exit code 1 (set
    HWLAT_DEBUG=1 for the traceback). typer vendors its own click, so its public
    exception types are used here."""
    try:
        # without standalone mode click returns a typer.Exit's code instead of raising
        code = command(args=argv, standalone_mode=False)
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
    return code if isinstance(code, int) else 0


def main(argv: list[str] | None = None) -> int:
    code = run_cli(typer.main.get_command(app), argv)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
