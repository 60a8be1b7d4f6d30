"""The one console command, `hwlat`. Each package owns its subcommands; this file only
puts them together (and runs the end-to-end demo)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from devices.cli import agent
from hwlat import __version__
from hwlat.demo import run_demo
from hwlat.demo_service import DEFAULT_PORT
from hwlat.errors import run_cli
from hwlat.profile_cmd import profile
from hwlat.search_cmd import search
from hwlat.validate import validate
from latency_service import cli as service_cli
from latency_service import cli_data
from searchers.cli import spaces_app

app = typer.Typer(
    name="hwlat",
    help="Hardware-latency lookup tables for hardware-aware NAS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(spaces_app, name="spaces")
app.command("profile")(profile)
app.command("serve")(service_cli.serve)
app.add_typer(service_cli.devices_app, name="devices")
service_cli.jobs_app.command("remeasure")(cli_data.jobs_remeasure)
service_cli.jobs_app.command("retest")(cli_data.jobs_retest)
service_cli.jobs_app.command("cancel")(cli_data.jobs_cancel)
service_cli.devices_app.command("repeatability")(cli_data.devices_repeatability)
app.add_typer(service_cli.jobs_app, name="jobs")
app.command("query")(cli_data.query)
app.command("lut")(cli_data.lut)
app.command("agent")(agent)
app.command("train")(cli_data.train)
app.command("validate")(validate)
app.command("search")(search)


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


@app.command()
def demo(
    out_dir: Path = typer.Option(Path("demo-output"), "--out-dir", help="Service DB, logs."),
    quick: bool = typer.Option(False, "--quick", help="Tiny budgets (smoke tests)."),
    keep_serving: bool = typer.Option(
        False, "--keep-serving", help="Keep the service and its dashboard up until Ctrl-C."
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        min=1,
        max=65535,
        help=f"Service port (default: {DEFAULT_PORT} with --keep-serving, else any free one).",
    ),
) -> None:
    """The main job end to end: service, agent, predictors, a ProxylessNAS search to a
    latency target, and the searched network measured."""
    console = Console()
    console.print(f"[bold]hwlat {__version__}[/bold] demo\n")
    run_demo(console, out_dir, quick=quick, keep=keep_serving, port=port)


def main(argv: list[str] | None = None) -> int:
    code = run_cli(typer.main.get_command(app), argv)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
