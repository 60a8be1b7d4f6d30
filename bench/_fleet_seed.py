"""bench/fleet.py's database: bulk seeding (not through the API) and the final check."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
from rich.progress import Progress

from latency_service.db import make_engine, session_factory
from latency_service.migrate import upgrade
from latency_service.repository.devices import create_device
from latency_service.repository.ops import ensure_ops
from profiler.ops import OpSpec
from searchers.spaces import create_space

PG = "postgresql://postgres@127.0.0.1:5432/{db}"
RESOLUTIONS = (224, 192, 160, 128, 112, 96, 64, 48, 32)

INSERT = """
INSERT INTO measurements (device_id, revision, op_id, run_id, median_ms, mean_ms, std_ms,
    min_ms, p10_ms, p90_ms, iqr_ms, samples, calls_per_sample, ci_half_width_ms,
    target_met, stable, runtime, host_state, extra, created_at)
SELECT d, 1, o, 'seed-' || r, m, m, m * 0.01, m * 0.97, m * 0.98, m * 1.02, m * 0.02, 30, 5,
    m * 0.005, true, true, '{}', '{}', '{}', now() - make_interval(days => 20 - r)
FROM unnest(%(devices)s::int[]) AS d, unnest(%(ops)s::int[]) AS o,
    generate_series(%(first)s, %(first)s + %(runs)s - 1) AS r,
    LATERAL (SELECT 0.05 + ((d * 7919 + o * 104729 + r * 31) %% 5000) / 1000.0 AS m) AS x
"""


def seed_specs(n: int) -> list[OpSpec]:
    """Up to n distinct real ops: fbnet's, then proxyless-mobile's, over resolutions."""
    specs: dict[str, OpSpec] = {}
    for space in ("fbnet", "proxyless-mobile", "spos-shufflenet"):
        for r in RESOLUTIONS:
            s = create_space(space, resolution=r)
            for op in s.fixed_ops() + s.distinct_ops():
                specs.setdefault(op.key, op)
    return list(specs.values())[:n]


def seeded(url: str) -> bool:
    with psycopg.connect(url.replace("+psycopg", "")) as c:
        return bool(c.execute("SELECT count(*) FROM devices").fetchone()[0])  # type: ignore[index]


def seed(url: str, rows: int, devices: int) -> None:
    t0 = time.perf_counter()
    upgrade(url)
    per_device = rows // devices
    specs = seed_specs(min(2000, per_device))
    runs = max(1, per_device // len(specs))
    engine = make_engine(url)
    with session_factory(engine)() as s:
        ids = [create_device(s, f"fleet-{i:04d}", "ort-cpu")[0].id for i in range(devices)]
        op_ids = [op.id for op in ensure_ops(s, specs).values()]
        s.commit()
    engine.dispose()
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as c, Progress() as bar:
        task = bar.add_task(
            f"seeding {devices} devices x {len(op_ids)} ops x {runs} runs", total=devices
        )
        left = per_device - runs * len(op_ids)  # one run more of the first ops: rows exact
        for i in range(0, devices, 20):
            chunk = ids[i : i + 20]
            c.execute(INSERT, {"devices": chunk, "ops": op_ids, "runs": runs, "first": 0})
            if left:
                c.execute(
                    INSERT, {"devices": chunk, "ops": op_ids[:left], "runs": 1, "first": runs}
                )
            bar.advance(task, len(chunk))
        c.execute("ANALYZE")
        n = c.execute("SELECT count(*) FROM measurements").fetchone()[0]  # type: ignore[index]
    print(f"seeded {n} measurement rows over {devices} devices in {time.perf_counter() - t0:.0f} s")


def check(url: str, tmp: Path, queued: dict[str, int]) -> bool:
    """Every accepted upload stored; one measurement per done item; none twice. Counted
    from the measurements that answer a work item (ix_measurements_work_item_id)."""
    acked = {int(x) for p in tmp.glob("a*.ack") for x in p.read_text().split()}
    with psycopg.connect(url.replace("+psycopg", "")) as c:
        per_item = dict(
            c.execute(
                "SELECT work_item_id, count(*) FROM measurements "
                "WHERE work_item_id IS NOT NULL GROUP BY 1"
            ).fetchall()
        )
        state = dict(c.execute("SELECT id, state FROM work_items WHERE kind = 'op'").fetchall())
        dup_op = c.execute(
            "SELECT count(*) FROM (SELECT device_id, op_id FROM measurements WHERE "
            "work_item_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d"
        ).fetchone()[0]  # type: ignore[index]
        again = c.execute("SELECT count(*) FROM work_items WHERE attempts > 1").fetchone()[0]  # type: ignore[index]
        size, rows = c.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database())), "
            "(SELECT count(*) FROM measurements)"
        ).fetchone()  # type: ignore[misc]
    lost = sum(1 for i in acked if state.get(i) != "done" or per_item.get(i) != 1)
    done_not_one = sum(1 for i, st in state.items() if st == "done" and per_item.get(i) != 1)
    dup_item = sum(1 for n in per_item.values() if n > 1)
    states: dict[str, int] = {}
    for st in state.values():
        states[st] = states.get(st, 0) + 1
    print(
        f"database: {size}, {rows} measurement rows; work items {sum(queued.values())} queued, "
        f"now {states}; {again} leased more than once (their agent was killed)"
    )
    print(
        f"check: {len(acked)} accepted uploads, {lost} lost; done items without exactly one "
        f"measurement: {done_not_one}; items measured twice: {dup_item}; (device, op) "
        f"measured twice: {dup_op}"
    )
    return lost == done_not_one == dup_item == dup_op == 0
