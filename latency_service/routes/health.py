from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from latency_service.deps import SessionDep
from latency_service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz(session: SessionDep) -> Health:
    """Liveness and database reachability."""
    session.execute(text("SELECT 1"))
    return Health(status="ok", database=session.get_bind().dialect.name)
