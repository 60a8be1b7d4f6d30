"""`hwlat demo`: the main job end to end on this machine (see `hwlat.demo`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from hwlat import __version__
from hwlat.demo import run_demo
from hwlat.demo_service import DEFAULT_PORT


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
    """The main job end to end: service, agent, predictors, a search, its result measured.

    A ProxylessNAS search to a latency target on the device's measured table; the
    searched network is trained and measured end to end."""
    console = Console()
    console.print(f"[bold]hwlat {__version__}[/bold] demo\n")
    run_demo(console, out_dir, quick=quick, keep=keep_serving, port=port)
