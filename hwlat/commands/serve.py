"""`hwlat serve`: migrate the database to the latest schema, then serve the API."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from hwlat.commands.connect import admin_token_file, local_admin_token
from latency_service.config import ServiceSettings


def serve(
    db: Annotated[
        str | None,
        typer.Option("--db", help="Database URL (default: SQLite file in the user data dir)."),
    ] = None,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64)] = 1,
) -> None:
    """Migrate the database to the latest schema, then serve the API (uvicorn)."""
    from latency_service.db import normalise_url
    from latency_service.migrate import upgrade

    if db:
        os.environ["HWLAT_DATABASE_URL"] = db
    if not os.environ.get("HWLAT_ADMIN_TOKEN"):
        os.environ["HWLAT_ADMIN_TOKEN"] = local_admin_token(create=True) or ""
        where = f"in {admin_token_file()}"
    else:
        where = "from HWLAT_ADMIN_TOKEN"
    settings = ServiceSettings()
    upgrade(normalise_url(settings.database_url))
    typer.echo(
        f"hwlat service on http://{host}:{port} ({workers} worker(s)); database "
        f"{settings.database_url.split('@')[-1]}; admin token {where}",
        err=True,
    )
    # the server runs in a process of its own main module, so uvicorn's workers do not
    # import the CLI (torch) again; exec keeps the pid, so signals reach it as before
    sys.stdout.flush()
    sys.stderr.flush()
    argv = ["--host", host, "--port", str(port), "--workers", str(workers)]
    os.execv(sys.executable, [sys.executable, "-m", "latency_service.serving", *argv])
