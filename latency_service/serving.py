"""How every uvicorn worker of the service talks TCP: `uvicorn_options()`.

uvicorn with `--workers N > 1` binds the listening socket itself as
`socket.socket(family)`, whose `proto` is 0; the workers inherit it, and asyncio sets
TCP_NODELAY on an accepted connection only when `sock.proto == IPPROTO_TCP`. So with
two or more workers Nagle's algorithm stays on, and a response written in two sends
(Starlette sends the head, then the body) waits for the client's delayed ACK: every
request took ~44 ms on loopback (strace: no `setsockopt(TCP_NODELAY)` after `accept4`
in a worker, two `sendto`s per response, the second 40 ms late). One worker binds with
`getaddrinfo`'s proto 6 and never showed it. The protocols below set TCP_NODELAY on every
connection themselves, whatever bound the socket (uvicorn, a supervisor, systemd).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import socket
import sys
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # the peer reset it already: the protocol sees that
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _nodelay(transport)
        super().connection_made(transport)


def tune_interpreter() -> None:
    """Two settings for a worker process, once the app is built.

    The heap: everything allocated while starting (the app, its imports: ~10^6 objects)
    is moved out of the collector's reach. Without it every full collection walks them
    all: 150-180 ms pauses, several a second under read load, were the p90-p99 of single
    lookups at 32 clients (gc.callbacks timing in one worker; p90 75 ms, p99 185 ms).
    Startup objects live as long as the process anyway.

    The GIL: writing handlers run in threads and hold a device's row lock over a dozen
    database round trips; after each one the thread waits for the GIL, up to the switch
    interval (5 ms) when the loop or a snapshot load is busy, and every other lease and
    upload of that device queues behind the lock (bench/fleet.py). 1 ms shortens that
    wait; the cost is more frequent switching between busy threads."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)


def http_protocol() -> str:
    """uvicorn's `http` option: httptools' parser when installed (uvicorn[standard]),
    else h11's; either with TCP_NODELAY set per connection."""
    if importlib.util.find_spec("httptools") is not None:
        return "latency_service._httptools:NoDelayHttpTools"
    return "latency_service.serving:NoDelayH11"


def uvicorn_options() -> dict[str, Any]:
    """What `hwlat serve` passes to `uvicorn.run` besides the app, host, port, workers."""
    return {"http": http_protocol(), "loop": "auto", "log_level": "warning"}


def main(argv: list[str] | None = None) -> None:
    """`python -m latency_service.serving --host H --port P --workers N`: what `hwlat
    serve` execs once the database is migrated. uvicorn's workers are spawned processes
    that import the parent's main module again: run from `hwlat.cli` each worker loaded
    torch (the CLI's imports; ~4 s and ~300 MB a worker), from here only the service."""
    import uvicorn

    ap = argparse.ArgumentParser(prog="python -m latency_service.serving")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args(argv)
    uvicorn.run(
        "latency_service.main:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        **uvicorn_options(),
    )


if __name__ == "__main__":
    main()
