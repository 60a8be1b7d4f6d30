"""Alembic is the only source of the schema: head matches the models exactly, and the
migrations go down to nothing and up again, on SQLite and PostgreSQL; two instances that
migrate the same database at once take turns."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from latency_service.db import make_engine
from latency_service.migrate import current
from latency_service.models import Base
from tests.latency_service.support import alembic_config, downgrade, upgrade

TABLES = {
    "agent_tokens",
    "devices",
    "lut_imports",
    "measurements",
    "network_measurements",
    "ops",
    "predictors",
    "reference_readings",
    "space_targets",
    "work_items",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


def test_models_cover_every_table() -> None:
    assert set(Base.metadata.tables) == TABLES


def test_upgrade_head_on_an_empty_database(empty_db_url: str) -> None:
    assert _tables(empty_db_url) == set()
    upgrade(empty_db_url)
    assert _tables(empty_db_url) == TABLES | {"alembic_version"}
    head = ScriptDirectory.from_config(alembic_config(empty_db_url)).get_current_head()
    assert head is not None and current(empty_db_url) == head


def test_head_matches_the_models(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    assert _diff(empty_db_url) == []


def test_downgrade_to_base_and_up_again(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    downgrade(empty_db_url, "base")
    assert _tables(empty_db_url) <= {"alembic_version"}
    assert current(empty_db_url) is None
    upgrade(empty_db_url)
    assert _tables(empty_db_url) == TABLES | {"alembic_version"}
    assert _diff(empty_db_url) == []


def test_the_diff_check_sees_a_missing_table(empty_db_url: str) -> None:
    """The comparison above is not vacuous: a schema short of one table shows up."""
    upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            Base.metadata.tables["network_measurements"].drop(conn)
    finally:
        engine.dispose()
    diff = _diff(empty_db_url)
    assert [d[0] for d in diff if isinstance(d, tuple)].count("add_table") == 1


# a fresh interpreter that imports everything first, says so, and migrates on a go line
UPGRADE_ON_GO = (
    "import sys\n"
    "from latency_service.migrate import upgrade\n"
    "print('ready', flush=True)\n"
    "sys.stdin.readline()\n"
    "upgrade(sys.argv[1])\n"
)


def test_concurrent_upgrades_of_an_empty_database_take_turns(empty_db_url: str) -> None:
    """Two service instances starting at once both run `upgrade head`: both must succeed
    and leave the schema at head (unserialised, the second fails creating
    alembic_version, or trips over a revision the first is applying)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADE_ON_GO, empty_db_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:  # both imported: from here on they race on the database alone
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    head = ScriptDirectory.from_config(alembic_config(empty_db_url)).get_current_head()
    assert current(empty_db_url) == head
    assert _tables(empty_db_url) == TABLES | {"alembic_version"}
    assert _diff(empty_db_url) == []


def test_one_linear_history() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1
    assert len(script.get_bases()) == 1


MEASUREMENT = (
    "INSERT INTO measurements (device_id, revision, op_id, run_id, median_ms, mean_ms, "
    "std_ms, min_ms, p10_ms, p90_ms, iqr_ms, samples, calls_per_sample, target_met, stable, "
    "runtime, host_state, extra, created_at{cols}) VALUES (1, 1, 1, 'r', {ms}, 1.5, 0.1, 1.4, "
    "1.4, 1.6, 0.1, 30, 1, true, true, '{{}}', '{{}}', '{{}}', '2026-01-01'{vals})"
)


def seed_one_measurement(conn: Connection) -> None:
    """Device 1, op 1 and one measurement of it (1.5 ms, run 'r'), in plain SQL that
    every schema revision since 0001 accepts."""
    conn.execute(
        text(
            "INSERT INTO devices (id, name, runtime, revision, created_at) "
            "VALUES (1, 'd', 'ort-cpu', 1, '2026-01-01')"
        )
    )
    conn.execute(
        text(
            "INSERT INTO ops (id, key, kind, spec, features, created_at) "
            "VALUES (1, 'k', 'conv', '{}', '{}', '2026-01-01')"
        )
    )
    conn.execute(text(MEASUREMENT.format(cols="", vals="", ms=1.5)))


def test_0003_keeps_measurements_and_links_none_of_them(empty_db_url: str) -> None:
    """Adding the reference link rebuilds `measurements` on SQLite: rows must survive."""
    upgrade(empty_db_url, "0002")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            seed_one_measurement(conn)
        upgrade(empty_db_url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT median_ms, reference_id FROM measurements")).all()
        assert [tuple(r) for r in rows] == [(1.5, None)]
        downgrade(empty_db_url, "0002")  # and back: the column goes, the row stays
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM measurements")).scalar_one() == 1
    finally:
        engine.dispose()


def test_0004_lets_one_run_measure_an_op_twice_and_keeps_the_newest_going_down(
    empty_db_url: str,
) -> None:
    """Measurements gain the work item they answered: the same op and run may have two
    rows (a repeat); downgrading keeps the newest of them."""
    upgrade(empty_db_url, "0003")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            seed_one_measurement(conn)
        upgrade(empty_db_url)
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT median_ms, work_item_id FROM measurements")).all()
            assert [tuple(r) for r in rows] == [(1.5, None)]
            conn.execute(
                text(
                    "INSERT INTO work_items (id, device_id, kind, op_id, state, attempts, "
                    "created_at, updated_at) VALUES (7, 1, 'op', 1, 'done', 1, "
                    "'2026-01-02', '2026-01-02')"
                )
            )
            conn.execute(text(MEASUREMENT.format(cols=", work_item_id", vals=", 7", ms=2.5)))
        downgrade(empty_db_url, "0003")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT median_ms FROM measurements")).all()
        assert [tuple(r) for r in rows] == [(2.5,)]
    finally:
        engine.dispose()


def test_0005_gives_existing_work_items_the_reason_queue(empty_db_url: str) -> None:
    """Work items gain why they were queued; those from before were asked for."""
    upgrade(empty_db_url, "0004")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            seed_one_measurement(conn)
            conn.execute(
                text(
                    "INSERT INTO work_items (id, device_id, kind, op_id, state, attempts, "
                    "created_at, updated_at) VALUES (7, 1, 'op', 1, 'pending', 0, "
                    "'2026-01-02', '2026-01-02')"
                )
            )
        upgrade(empty_db_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT reason FROM work_items")).scalars().all() == ["queue"]
        downgrade(empty_db_url, "0004")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM work_items")).scalar_one() == 1
    finally:
        engine.dispose()


def test_0006_marks_devices_measured_and_going_down_drops_imported_ones(
    empty_db_url: str,
) -> None:
    """Devices from before are measured; an imported device (statistics the old schema
    cannot hold) goes on downgrade, with everything of its own; measured ones stay."""
    upgrade(empty_db_url, "0005")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as conn:
            seed_one_measurement(conn)
        upgrade(empty_db_url)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT source FROM devices")).scalars().all() == ["measured"]
            conn.execute(
                text(
                    "INSERT INTO devices (id, name, runtime, revision, source, created_at) "
                    "VALUES (2, 'imp', 'imported', 1, 'imported', '2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO measurements (device_id, revision, op_id, run_id, median_ms, "
                    "mean_ms, samples, calls_per_sample, target_met, stable, runtime, "
                    "host_state, extra, created_at) VALUES (2, 1, 1, 'import:x', 0.5, 0.5, 1, "
                    "1, false, false, '{}', '{}', '{}', '2026-01-01')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO lut_imports (device_id, revision, file_name, sha256, format, "
                    "space, resolution, width, classes, options, entries, mapped, unfilled, "
                    "unmapped, imported_at) VALUES (2, 1, 'f.yaml', 'ab', 'proxyless-yaml', "
                    "'proxyless-mobile', 224, 1.0, 1000, '', '{}', 1, '[]', '[]', '2026-01-01')"
                )
            )
        downgrade(empty_db_url, "0005")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM devices")).scalars().all() == ["d"]
            assert conn.execute(text("SELECT median_ms FROM measurements")).scalars().all() == [1.5]
    finally:
        engine.dispose()
