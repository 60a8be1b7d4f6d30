"""`hwlat db upgrade|current`: the service's schema, without serving it.

`hwlat serve` migrates before it serves, which is all one machine needs. A fleet of
instances on one PostgreSQL database migrates once, first (a one-shot job, e.g. the
compose file's `migrate` service), and checks where a database stands before a rolling
upgrade; both are this group. Migrations take a lock (`latency_service.migrate`), so a
job and an instance that start together take turns."""

from __future__ import annotations

from typing import Annotated

import typer

from hwlat.commands.common import fail

db_app = typer.Typer(help="Migrate the service's database.", no_args_is_help=True)

Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: HWLAT_DATABASE_URL, else the SQLite file in the user "
        "data dir, as `hwlat serve` uses).",
    ),
]


def _url(db: str | None) -> str:
    from latency_service.config import ServiceSettings
    from latency_service.db import normalise_url

    return normalise_url(db or ServiceSettings().database_url)


def _shown(url: str) -> str:
    return url.split("@")[-1]  # never print a password


@db_app.command("upgrade")
def db_upgrade(
    db: Db = None,
    revision: Annotated[str, typer.Option("--revision", help="Target revision.")] = "head",
) -> None:
    """Migrate the database to the latest schema (or --revision); a no-op when it is."""
    from sqlalchemy.exc import OperationalError

    from latency_service.migrate import current, upgrade

    url = _url(db)
    try:
        before = current(url)
        upgrade(url, revision)
        after = current(url)
    except OperationalError as exc:
        fail(f"cannot migrate {_shown(url)}: {exc.orig or exc} (is the database up?)")
    change = "already at" if before == after else f"{before or 'empty'} ->"
    typer.echo(f"database {_shown(url)}: {change} {after}", err=True)


@db_app.command("current")
def db_current(db: Db = None) -> None:
    """Print the database's schema revision; exit code 1 unless it is this checkout's head."""
    from sqlalchemy.exc import OperationalError

    from latency_service.migrate import current, head

    url = _url(db)
    try:
        rev = current(url)
    except OperationalError as exc:
        fail(f"cannot read {_shown(url)}: {exc.orig or exc} (is the database up?)")
    newest = head()
    if rev != newest:  # behind (or ahead of) this code: migrate before serving it
        fail(f"{_shown(url)} is at {rev or 'empty'}, not {newest}: run `hwlat db upgrade`")
    typer.echo(f"{rev} (head)")
