"""Every test here runs on SQLite (a file in tmp_path) and on a throwaway PostgreSQL
database (skipped when no server answers on 127.0.0.1:5432). The schema comes from
Alembic only; the app is the real one from create_app."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from latency_service.config import ServiceSettings
from latency_service.main import create_app
from tests.latency_service.support import ADMIN_TOKEN, Api, MakeApi, upgrade

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
_pg_down: list[str] = []  # the reason, once a connection attempt failed


def _pg_connect() -> psycopg.Connection[Any]:
    if _pg_down:
        pytest.skip(_pg_down[0])
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=2)
    except psycopg.OperationalError as exc:
        _pg_down.append(f"no PostgreSQL server on 127.0.0.1:5432: {exc}".strip())
        pytest.skip(_pg_down[0])


@pytest.fixture
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the parametrised backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hwlat.db'}"
        return
    name = f"hwlat_test_{secrets.token_hex(6)}"
    with _pg_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.format(db=name)
    finally:
        with _pg_connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that (indirectly) needs a database runs on both backends."""
    if "empty_db_url" in metafunc.fixturenames:
        metafunc.parametrize("empty_db_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """A database at Alembic head."""
    upgrade(empty_db_url)
    return empty_db_url


@pytest.fixture
def make_api(db_url: str) -> Iterator[MakeApi]:
    """make_api(**settings) -> Api on the test's database; engines disposed at the end."""
    made: list[Api] = []

    def make(**overrides: Any) -> Api:
        settings = ServiceSettings(database_url=db_url, admin_token=ADMIN_TOKEN, **overrides)
        api = Api(create_app(settings))
        made.append(api)
        return api

    yield make
    for api in made:
        api.client.close()
        api.app.state.cache.close()
        api.app.state.engine.dispose()


@pytest.fixture
def api(make_api: MakeApi) -> Api:
    return make_api()


@pytest.fixture
def token(api: Api) -> str:
    """The agent token of device 'dev1' (created for the test)."""
    return api.make_device("dev1")
