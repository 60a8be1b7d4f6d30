"""`hwlat db upgrade|current` on SQLite and a throwaway PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hwlat.cli import main
from latency_service.migrate import current, head
from tests.devices.service_harness import drop_pg, pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/hwlat.db"
        return
    made = pg_database()
    if made is None:
        pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
    url, handle = made
    try:
        yield url
    finally:
        drop_pg(handle)


def test_upgrade_migrates_once_then_is_a_no_op(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "current", "--db", empty_url]) == 1
    assert "is at empty" in capsys.readouterr().err
    assert main(["db", "upgrade", "--db", empty_url]) == 0
    assert f"empty -> {head()}" in capsys.readouterr().err
    assert current(empty_url) == head()
    assert main(["db", "upgrade", "--db", empty_url]) == 0
    assert f"already at {head()}" in capsys.readouterr().err
    assert main(["db", "current", "--db", empty_url]) == 0
    assert capsys.readouterr().out.strip() == f"{head()} (head)"


def test_upgrade_to_a_revision_and_current_says_it_is_behind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/hwlat.db"
    assert main(["db", "upgrade", "--db", url, "--revision", "0002"]) == 0
    assert main(["db", "current", "--db", url]) == 1
    assert f"at 0002, not {head()}: run `hwlat db upgrade`" in capsys.readouterr().err


def test_upgrade_takes_the_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/env.db"
    monkeypatch.setenv("HWLAT_DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 0
    assert current(url) == head()


def test_an_unreachable_server_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql://hwlat:secret@127.0.0.1:1/hwlat"  # nothing listens on port 1
    assert main(["db", "upgrade", "--db", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot migrate 127.0.0.1:1/hwlat") and "secret" not in err
    assert len(err.strip().splitlines()) <= 2  # psycopg's message may add a hint line
