"""A fleet on PostgreSQL: 10^7 measurement rows over 1 000 devices, 20 simulated agents
leasing and uploading over real HTTP, 50 readers fetching LUTs and single lookups, and
one agent SIGKILLed and restarted every 30 s, for 5 minutes.

The service is `hwlat serve --workers 2` on a throwaway database of the PostgreSQL server
on this machine (127.0.0.1:5432). Seeding is bulk (devices and ops through the
repository, the measurements with one INSERT ... SELECT), never through the API. Agents
are processes with a fake runtime (a latency after a 20-60 ms sleep per op; two agents
per device, so leases of one queue race); a killed agent's lease runs out (HWLAT_LEASE_S
15) and its items go to the others. Readers (asyncio, two processes) pause 50-250 ms
between requests; 80% of their reads go to 50 hot devices (the 10 being measured and 40
others), the rest anywhere in the fleet.

The check at the end: every upload an agent saw accepted is stored, every done item has
exactly one measurement, no item or (device, op) has two, no 5xx anywhere.

    .venv/bin/python bench/fleet.py                      # the full run (~15 min)
    .venv/bin/python bench/fleet.py --rows 200000 --devices 50 --minutes 0.5   # a smoke run
    .venv/bin/python bench/fleet.py --keep               # keep the seeded database ...
    .venv/bin/python bench/fleet.py --reuse hwlat_fleet_xxxx   # ... and run on it again
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._fleet_load import agent_main, readers_main, report
from bench._fleet_seed import PG, check, seed, seeded
from latency_service.client import HwlatClient
from tests.devices.service_harness import ADMIN, Service

HOT = 50  # devices most reads go to


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--kill-every", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="do not drop the database")
    ap.add_argument("--reuse", metavar="DB", help="a database seeded by an earlier --keep run")
    ap.add_argument("--seed-only", action="store_true", help="seed (and keep) the database")
    args = ap.parse_args()
    print("command: .venv/bin/python bench/fleet.py " + " ".join(sys.argv[1:]), flush=True)
    db = args.reuse or f"hwlat_fleet_{random.randrange(16**6):06x}"
    admin = psycopg.connect(PG.format(db="postgres"), autocommit=True)
    try:
        if not args.reuse:
            admin.execute(f'CREATE DATABASE "{db}"')
        url = PG.format(db=db)
        if not args.reuse or not seeded(url):
            seed(url, args.rows, args.devices)
        if not args.seed_only:
            run(url, args)
    finally:
        if not (args.keep or args.reuse or args.seed_only):
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        else:
            print(f"database kept: {db} (bench/fleet.py --reuse {db})")
        admin.close()


def run(url: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        svc = Service(Path(tmp) / "svc", url, lease_s=15, workers=args.workers).start()
        try:
            drive(svc, url, Path(tmp), args)
        finally:
            svc.stop()


def drive(svc: Service, url: str, tmp: Path, args: argparse.Namespace) -> None:
    with HwlatClient(svc.url, admin_token=ADMIN) as admin:
        names = [d.name for d in admin.list_devices()]
        active = sorted(names)[: max(1, args.agents // 2)]
        tokens = {name: admin.add_token(name).token for name in active}
        queued = {name: queue(admin, name, i) for i, name in enumerate(active)}
    hot = active + random.Random(0).sample([n for n in names if n not in active], HOT - len(active))
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    started = time.time()
    agents = [
        start_agent(ctx, svc.url, tokens[active[i % len(active)]], tmp, i, stop)
        for i in range(args.agents)
    ]
    per = [args.readers // 2, args.readers - args.readers // 2]
    readers = [
        ctx.Process(target=readers_main, args=(svc.url, n, names, hot, tmp / f"r{j}.log", stop))
        for j, n in enumerate(per)
    ]
    for p in readers:
        p.start()
    kills, serial = 0, args.agents
    end, next_kill = started + args.minutes * 60, started + args.kill_every
    while time.time() < end:
        time.sleep(0.5)
        if time.time() >= next_kill:
            i = random.randrange(len(agents))
            agents[i].kill()  # SIGKILL: no upload, no release; its lease runs out
            agents[i].join()
            token = tokens[active[i % len(active)]]
            agents[i] = start_agent(ctx, svc.url, token, tmp, serial, stop)
            kills, serial, next_kill = kills + 1, serial + 1, next_kill + args.kill_every
    stop.set()
    for p in agents + readers:
        p.join(timeout=60)
    seconds = time.time() - started
    print(
        f"ran {seconds:.0f} s: {args.agents} agents ({kills} SIGKILLed and restarted), "
        f"{args.readers} readers, {args.workers} service workers"
    )
    bad = report(tmp, started, min(60.0, seconds / 3))["bad"]
    if not check(url, tmp, queued) or bad:
        raise SystemExit("fleet check FAILED")
    print("fleet check passed: nothing lost, nothing twice, no 5xx")


def start_agent(ctx, url: str, token: str, tmp: Path, serial: int, stop):  # type: ignore[no-untyped-def]
    p = ctx.Process(target=agent_main, args=(url, token, serial, tmp, stop))
    p.start()
    return p


def queue(admin: HwlatClient, device: str, salt: int) -> int:
    """6 000 ops the device has not measured (1x1 and 3x3 convs; sizes from a random base,
    so a run on a reused database gets new ones) for an agent pair."""
    base = 7 + 2 * random.randrange(200)
    keys = [
        f"conv|cin={cin},cout={cout},g=1,k={k},s=1|1x{cin}x{h}x{h}|float32"
        for cin in range(8, 68, 4)
        for cout in range(8, 88, 4)
        for k in (1, 3)
        for h in range(base, base + 20, 2)
    ][:6000]
    total = 0
    for i in range(0, len(keys), 1000):
        total += admin.enqueue_ops(device, keys[i : i + 1000]).new
    return total


if __name__ == "__main__":
    main()
