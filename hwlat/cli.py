"""The one console command, `hwlat`. Each package owns its subcommands; this file only
puts them together (and runs the end-to-end demo)."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from hwlat import __version__
from hwlat.errors import run_cli
from searchers.cli import print_overview, spaces_app

app = typer.Typer(
    name="hwlat",
    help="Hardware-latency lookup tables for hardware-aware NAS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(spaces_app, name="spaces")


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
def demo() -> None:
    """The main job end to end. Today: an overview of the bundled search spaces."""
    console = Console()
    console.print(f"[bold]hwlat {__version__}[/bold] demo: the bundled search spaces\n")
    print_overview(console)
    console.print("\nNext: `hwlat spaces show fbnet --resolution 224` for one space in full.")


def main(argv: list[str] | None = None) -> int:
    code = run_cli(typer.main.get_command(app), argv)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
