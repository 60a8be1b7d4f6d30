"""Real processes for agent tests: `hwlat serve` on SQLite or a throwaway PostgreSQL
database, agents as `hwlat agent` subprocesses, and a fault-injecting TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ADMIN = "test-admin-token"
QUICK = [
    "--budget-s",
    "0.02",
    "--min-sample-ms",
    "0.3",
    "--samples-per-round",
    "3",
    "--rounds",
    "3",
    "--batch",
    "4",
    "--quiet",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`hwlat serve` in a subprocess; can be stopped and started again on the same port."""

    def __init__(self, home: Path, db_url: str, lease_s: float = 4.0, workers: int = 1):
        self.home, self.db_url, self.port, self.workers = home, db_url, free_port(), workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "XDG_DATA_HOME": str(home),
            "HWLAT_ADMIN_TOKEN": ADMIN,
            "HWLAT_LEASE_S": str(lease_s),
            "HWLAT_DATABASE_URL": db_url,
            # these tests count deliveries exactly once: no op queued again because the
            # test machine was busy (tests/latency_service/repository/test_remeasure.py covers that)
            "HWLAT_REMEASURE_DRIFT": "0",
            "HWLAT_REMEASURE_CI": "0",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        cmd = [
            sys.executable,
            "-m",
            "hwlat.cli",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.proc.kill()  # not left running (its workers exit with it)
        self.proc.wait(timeout=30)
        raise RuntimeError("hwlat serve did not come up")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)


def pg_database() -> tuple[str, object] | None:
    """A throwaway PostgreSQL database (url, admin connection), or None without a server."""
    try:
        import psycopg

        conn = psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=2
        )
    except Exception:
        return None
    name = f"hwlat_agent_{secrets.token_hex(4)}"
    conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql://postgres@127.0.0.1:5432/{name}", (conn, name)


def drop_pg(handle: object) -> None:
    conn, name = handle  # type: ignore[misc]
    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


@contextlib.contextmanager
def running_service(database: str, tmp_path: Path, **kwargs: Any) -> Iterator[Service]:
    """`hwlat serve` (Service's `kwargs`) on a fresh SQLite file or a throwaway PostgreSQL
    database ("sqlite" | "postgresql"; the test is skipped without a server), stopped and
    the database dropped afterwards."""
    import pytest

    handle = None
    url = f"sqlite:///{tmp_path}/svc.db"
    if database == "postgresql":
        made = pg_database()
        if made is None:
            pytest.skip("no PostgreSQL server on 127.0.0.1:5432")
        url, handle = made
    svc = Service(tmp_path / "svc-home", url, **kwargs).start()
    try:
        yield svc
    finally:
        svc.stop()
        if handle is not None:
            drop_pg(handle)


def start_agent(
    url: str, token: str, home: Path, cache: Path, *extra: str, runtime: str = "ort-cpu"
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(home),
        "HWLAT_CACHE_DIR": str(cache),
        "HWLAT_AGENT_HEARTBEAT_S": "1",
        "HWLAT_AGENT_POLL_S": "0.3",
    }
    cmd = [
        sys.executable,
        "-m",
        "hwlat.cli",
        "agent",
        "--server",
        url,
        "--token",
        token,
        "--runtime",
        runtime,
        "--threads",
        "1",
        *QUICK,
        *extra,
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class FaultProxy(threading.Thread):
    """TCP proxy to `target` that drops a share of new connections, cuts a share of
    requests in flight, delays a share of chunks, and counts the HTTP status codes of the
    responses it carries."""

    STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")

    def __init__(
        self,
        target_port: int,
        drop: float = 0.05,
        delay: float = 0.1,
        cut: float = 0.03,
        seed: int = 0,
    ):
        super().__init__(daemon=True)
        self.target_port, self.drop, self.delay, self.cut = target_port, drop, delay, cut
        self.port = free_port()
        self.rng = random.Random(seed)
        self.statuses: Counter[int] = Counter()
        self.dropped = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self.ready.set()
        self.loop.run_forever()
        server.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if self.rng.random() < self.cut:
                    # a request, or an answer, lost in flight: the client sees a reset; a
                    # lost answer means the service did the work (a lease, an upload) and
                    # the agent must cope (leases expire, uploads are idempotent)
                    self.dropped += 1
                    break
                if self.rng.random() < self.delay:
                    await asyncio.sleep(self.rng.uniform(0.05, 0.5))
                if count:
                    self.statuses.update(int(m) for m in self.STATUS.findall(data))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.rng.random() < self.drop:
            self.dropped += 1
            writer.close()  # a connection that dies before it is served
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_w, False), self._pipe(up_r, writer, True))

    def start_and_wait(self) -> FaultProxy:
        self.start()
        self.ready.wait(10)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
