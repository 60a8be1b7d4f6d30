"""The demo's own `hwlat serve`: a fresh SQLite file, a port, start, keep serving, stop.

Without `--keep-serving` the demo takes any free port; with it, DEFAULT_PORT, so the
README can give the dashboard's address. A port in use is refused before anything runs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console

from hwlat.commands.common import fail

DEFAULT_PORT = 8765  # --keep-serving's port: the README's dashboard address
HOST = "127.0.0.1"
DEVICE = "this-machine"
HWLAT = [sys.executable, "-m", "hwlat.cli"]
DB_FILES = ("service.db", "service.db-wal", "service.db-shm")  # SQLite in WAL mode
# The demo's service measures an op at most twice per revision (the service's default
# allows three): on a disturbed machine the re-measuring rules could otherwise nearly
# triple a newcomer's first run. A value set in the environment wins.
DEMO_REMEASURE_MAX = "1"


@dataclass(frozen=True)
class DemoService:
    url: str
    proc: subprocess.Popen[bytes]
    db: Path
    log: Path


def choose_port(port: int | None, keep_serving: bool) -> int:
    """`port` if given, DEFAULT_PORT with --keep-serving, else any free port."""
    if port is None and not keep_serving:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            return int(sock.getsockname()[1])
    chosen = DEFAULT_PORT if port is None else port
    if not port_free(chosen):
        fail(
            f"--port: {HOST}:{chosen} is already in use (is an earlier `hwlat demo "
            "--keep-serving` still running? Ctrl-C stops it); choose another with --port N"
        )
    return chosen


def port_free(port: int) -> bool:
    """Whether the service could listen on `port` (SO_REUSEADDR, as uvicorn binds)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def remove_old_db(out_dir: Path) -> list[Path]:
    """Delete the previous demo's database (scratch; its WAL files too); returns what went."""
    gone = [out_dir / name for name in DB_FILES if (out_dir / name).exists()]
    for path in gone:
        path.unlink()
    return gone


@contextmanager
def background_service(out_dir: Path, admin: str, port: int) -> Iterator[DemoService]:
    """`hwlat serve` on `out_dir/service.db` at `port`, stopped on the way out."""
    db, log = out_dir / "service.db", out_dir / "service.log"
    env = service_env(os.environ, db, admin)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*HWLAT, "serve", "--host", HOST, "--port", str(port)], env=env, stdout=out, stderr=out
        )
        try:
            yield DemoService(_wait_up(f"http://{HOST}:{port}", proc, log), proc, db, log)
        finally:
            stop(proc)


def service_env(base: Mapping[str, str], db: Path, admin: str) -> dict[str, str]:
    """The demo service's environment: its SQLite file, admin token, repeats bound."""
    return {
        "HWLAT_REMEASURE_MAX": DEMO_REMEASURE_MAX,
        **base,
        "HWLAT_DATABASE_URL": f"sqlite:///{db}",
        "HWLAT_ADMIN_TOKEN": admin,
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn shuts down gracefully), SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def keep_serving(
    console: Console, service: DemoService, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Print the dashboard's addresses and serve until Ctrl-C; then stop the service."""
    console.rule("the service keeps serving: the dashboard")
    console.print(f"devices:          {service.url}/")
    console.print(f"this machine:     {service.url}/devices/{DEVICE}")
    console.print(f"API docs:         {service.url}/docs")
    console.print("Ctrl-C stops the service.")
    # `kill PID` (SIGTERM) stops it as cleanly as Ctrl-C, instead of orphaning the server
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while service.proc.poll() is None:
            sleep(1.0)
    except KeyboardInterrupt:
        stop(service.proc)
        console.print(f"\nCtrl-C: service stopped (the database stays in {service.db})")
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
    fail(f"the service exited by itself (code {service.proc.returncode}); see {service.log}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url
        except httpx.TransportError:
            time.sleep(0.2)
    fail(f"the demo's service did not start; see {log}")
