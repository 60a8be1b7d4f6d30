"""Run the Alembic migrations programmatically (what `hwlat serve` and `hwlat db upgrade`
do first).

Several service instances on one PostgreSQL database start at once (a compose file with
N replicas, a rolling restart), and each runs `upgrade` before it serves. Two Alembic
runs on an empty database race: both see no `alembic_version` table, both create it, and
the second fails (duplicate key in `pg_type`, on every try in the tests). So on
PostgreSQL every upgrade or downgrade first takes a session-level advisory lock on a
separate connection held for the whole run: the runs take turns, and whoever comes
second finds the schema at head and does nothing. SQLite races the same way (two
`hwlat serve` on one file: "table alembic_version already exists"), because Python's
sqlite3 runs DDL outside a transaction, so SQLite's own write lock does not cover a
revision; there an exclusive `flock` on a file beside the database does the same job
(one machine, so a file lock reaches every process that can open the database).
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import make_url

from alembic import command
from latency_service.db import make_engine, normalise_url

ROOT = Path(__file__).resolve().parents[1]  # alembic/ and alembic.ini live at the repo root
# any fixed key serves as long as only hwlat's migrations take it: b"hwlat-mg" as an
# integer, halved to fit PostgreSQL's signed bigint
MIGRATION_LOCK_KEY = int.from_bytes(b"hwlat-mg", "big") >> 1
log = logging.getLogger(__name__)


def alembic_config(url: str) -> Config:
    ini = ROOT / "alembic.ini"
    if not ini.exists():
        raise FileNotFoundError(
            f"{ini} is missing: run hwlat from its source checkout "
            "(pip install -e .), where alembic/ lives"
        )
    cfg = Config(str(ini))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    return cfg


@contextmanager
def migration_lock(url: str) -> Iterator[None]:
    """Hold hwlat's migration lock for the duration: an advisory lock on PostgreSQL, a
    file lock on a SQLite file, nothing for anything else.

    A session-level lock outlives transactions, so Alembic's own connection can commit
    as it likes; it is released at the end, or by the server when this process dies
    (its connection closes), so a crashed migration never blocks the next one."""
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        with _file_lock(parsed.database):
            yield
        return
    if parsed.get_backend_name() != "postgresql":
        yield  # another server: hwlat installs no driver for one, so none is tested
        return
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            got = conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            if not got:
                log.warning("another process is migrating this database: waiting for it")
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
    finally:
        engine.dispose()


@contextmanager
def _file_lock(database: str | None) -> Iterator[None]:
    """An exclusive flock on `<database>-migrate.lock` (in-memory databases: nothing,
    no other process can see them). The OS drops it when the process dies."""
    if not database or database == ":memory:":
        yield
        return
    path = Path(database).with_name(Path(database).name + "-migrate.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(url: str, revision: str = "head") -> None:
    with migration_lock(url):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    with migration_lock(url):
        command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The database's schema revision (None: empty, never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    """The newest revision this checkout knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
