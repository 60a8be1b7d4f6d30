"""`GET /metrics`: the Prometheus text exposition (a read: open, or a token)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from latency_service.deps import MetricsDep, ReaderDep

router = APIRouter(tags=["metrics"])


# Not in the OpenAPI schema: it is for Prometheus, not API clients. A plain `def`, so the
# queue gauge's database query runs in the thread pool, off the event loop.
@router.get("/metrics", include_in_schema=False, dependencies=[ReaderDep])
def scrape(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
