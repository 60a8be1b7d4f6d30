"""The FastAPI app: `create_app(settings)`; `hwlat serve` runs it under uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latency_service import __version__
from latency_service.cache import ReadCache
from latency_service.config import ServiceSettings
from latency_service.dashboard import views as dashboard
from latency_service.db import make_engine, session_factory
from latency_service.fastpath import FastLookups, send_json
from latency_service.metrics import RequestMetrics, ServiceMetrics
from latency_service.routes import (
    agent,
    devices,
    drift,
    estimates,
    health,
    imports,
    jobs,
    latency,
    metrics,
    predictors,
)
from latency_service.routes._errors import validation_error
from latency_service.schemas import IMPORT_MB
from latency_service.serving import tune_interpreter

# a latency table of up to IMPORT_MB MB, in a JSON string (escaped quotes and newlines)
IMPORT_BODY_BYTES = 2 * (IMPORT_MB << 20) + (1 << 20)


class BodyLimit:
    """413 for a request body over `limit` bytes (`IMPORT_BODY_BYTES` for a file import,
    whose content the schema then holds to IMPORT_MB MB), by header or as it streams in."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        importing = str(scope.get("path", "")).endswith("/imports")
        limit = max(self.limit, IMPORT_BODY_BYTES) if importing else self.limit
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _reject(send, limit, importing)
            return
        seen, over, rejected = 0, False, False

        async def limited() -> Message:
            nonlocal seen, over
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                over = True
                raise _TooLarge
            return message

        async def send_unless_over(message: Message) -> None:
            # FastAPI catches errors while reading a body and answers 400 itself: once the
            # limit was hit, the app's answer is replaced by the 413
            nonlocal rejected
            if not over:
                await send(message)
            elif not rejected:
                rejected = True
                await _reject(send, limit, importing)

        try:
            await self.app(scope, limited, send_unless_over)
        except _TooLarge:
            if not rejected:
                await _reject(send, limit, importing)


async def _reject(send: Send, limit: int, importing: bool) -> None:
    advice = (
        f"a latency table is at most {IMPORT_MB} MB of text; is this the right file?"
        if importing
        else "send smaller batches"
    )
    body = f'{{"detail":"request body over {limit} bytes; {advice}"}}'.encode()
    await send_json(send, 413, body)


class _TooLarge(Exception):
    pass


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    app.state.cache.close()
    app.state.engine.dispose()


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings()
    engine = make_engine(settings.database_url)
    app = FastAPI(
        lifespan=lifespan,
        title="hwlat latency service",
        version=__version__,
        description="Measured block latencies per device, profiling work for "
        "device agents, and latency tables for NAS searchers.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.cache = ReadCache(
        app.state.sessions, ttl_s=settings.read_cache_s, max_devices=settings.read_cache_devices
    )
    app.state.metrics = ServiceMetrics(app.state.sessions)
    routers = (
        *(health, devices, imports, jobs, agent, latency),
        *(predictors, estimates, drift, metrics),
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(dashboard.router)  # read-only HTML pages at / and /devices/...
    app.include_router(dashboard.public)
    app.add_exception_handler(RequestValidationError, validation_error)
    reads_open = settings.read_access == "open"
    app.add_middleware(FastLookups, cache=app.state.cache, reads_open=reads_open)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    # added last, so outermost: it also counts the 413s that BodyLimit answers itself
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    return app


def app_factory() -> Any:
    """For `uvicorn --factory latency_service.main:app_factory` (settings from env)."""
    app = create_app()
    tune_interpreter()
    return app
