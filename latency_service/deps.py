"""Request dependencies: the DB session, and who is calling (admin, agent, reader)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from latency_service.config import ServiceSettings
from latency_service.db import session_scope
from latency_service.metrics import ServiceMetrics
from latency_service.models import Device
from latency_service.repository.devices import device_for_token, same_secret

bearer = HTTPBearer(auto_error=False, description="admin token, agent token or read token")


async def get_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


def get_session(request: Request) -> Iterator[Session]:
    yield from session_scope(request.app.state.sessions)


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def _token(creds: HTTPAuthorizationCredentials | None) -> str:
    if creds is None or not creds.credentials:
        raise HTTPException(
            401, "missing token: send 'Authorization: Bearer <token>'", headers=UNAUTHORIZED
        )
    return creds.credentials


def require_admin(creds: Credentials, settings: SettingsDep) -> None:
    if not same_secret(_token(creds), settings.admin_token):
        raise HTTPException(403, "this needs the admin token (HWLAT_ADMIN_TOKEN)")


def require_agent(creds: Credentials, session: SessionDep) -> Device:
    device = device_for_token(session, _token(creds))
    if device is None:
        raise HTTPException(
            401,
            "unknown or revoked agent token; ask the admin for a new one "
            "(hwlat devices token NAME)",
            headers=UNAUTHORIZED,
        )
    return device


READ_COOKIE = "hwlat_token"  # a browser's read token for the dashboard (set on /login)


async def require_reader(request: Request, creds: Credentials) -> None:
    """Reads are open, or need any valid token (checked off the event loop): as a bearer
    header, or for a browser as the `hwlat_token` cookie. A cookie only ever grants
    reads: admin and agent calls take the header alone, so a cross-site form cannot
    write with it."""
    settings: ServiceSettings = request.app.state.settings
    if settings.read_access == "open":
        return
    cookie = unquote(request.cookies.get(READ_COOKIE, ""))  # the login page encodes it
    token = _token(creds) if creds is not None or not cookie else cookie
    if same_secret(token, settings.admin_token) or same_secret(token, settings.read_token):
        return
    if not await run_in_threadpool(_is_agent_token, request, token):
        raise HTTPException(
            401, "unknown token: reads need a read, agent or admin token", headers=UNAUTHORIZED
        )


async def require_page_reader(request: Request, creds: Credentials) -> None:
    """`require_reader` for the dashboard: a browser without a valid token is sent to
    /login (which asks for one) instead of getting a JSON 401."""
    try:
        await require_reader(request, creds)
    except HTTPException as exc:
        if exc.status_code != 401:
            raise
        raise HTTPException(303, "a read token is needed", headers={"Location": "/login"}) from None


def _is_agent_token(request: Request, token: str) -> bool:
    with request.app.state.sessions() as session:
        return device_for_token(session, token) is not None


AdminDep = Depends(require_admin)
ReaderDep = Depends(require_reader)
PageReaderDep = Depends(require_page_reader)
AgentDevice = Annotated[Device, Depends(require_agent)]
