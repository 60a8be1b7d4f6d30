"""Prometheus metrics of one app: `ServiceMetrics` (owns its registry), the ASGI
middleware that counts and times every HTTP request, and the queue-depth collector.

Each app has its own `CollectorRegistry`, never prometheus_client's global one: tests
build many apps in one process, and a global registry would refuse the second app's
metrics as duplicates (and mix the apps' numbers). The counters live in this process:
under `hwlat serve --workers N` every worker counts its own requests, and a scrape sees
whichever worker answered it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latency_service.repository import work

UNMATCHED = "<unmatched>"  # the route label of requests no route answered (404s, 413s)
OTHER_METHOD = "OTHER"
# the method is client input: anything outside the standard set shares one label
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# up to a minute: predictor training and big LUTs take seconds, reads a few ms
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class WorkItemsCollector:
    """`hwlat_work_items{device,state}`, counted in the database at scrape time (one
    GROUP BY), so every worker reports the same, current numbers."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def describe(self) -> Iterable[Metric]:
        # lets the registry reserve the name without querying the database at startup
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        with self.sessions() as s:
            for device, state, n in work.queue_depth(s):
                family.add_metric([device, state], n)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "hwlat_work_items",
            "Work items per device and state (pending, leased, done, failed), counted in "
            "the database when scraped.",
            labels=["device", "state"],
        )


class ServiceMetrics:
    """The app's metrics; handlers increment them after their commit."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hwlat_http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "hwlat_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.leases_expired = Counter(
            "hwlat_leases_expired_total",
            "Leased work items whose lease ran out without a result (found when the "
            "device's agents next ask for a lease): sent back to pending, or failed after "
            "the last attempt.",
            ["device"],
            registry=self.registry,
        )
        self.uploads = Counter(
            "hwlat_uploads_total",
            "Results uploaded by agents, per result. accepted: stored. rejected: not "
            "stored, because the item is leased to another lease or failed, or because the "
            "whole upload was refused (403/404: a foreign lease, an unknown item, a key "
            "that is not the item's). duplicate: already stored for this run id (a retry). "
            "Uploads refused before the handler (401, 413, 422) are not counted here.",
            ["device", "outcome"],
            registry=self.registry,
        )
        self.trainings = Counter(
            "hwlat_predictor_trainings_total",
            "Predictor trainings per op kind: trained, or skipped for too few "
            "measurements. A refused training request (422) is not counted.",
            ["device", "outcome"],
            registry=self.registry,
        )
        self.registry.register(WorkItemsCollector(sessions))

    def render(self) -> bytes:
        """The Prometheus text exposition (queries the database for the queue gauge)."""
        return generate_latest(self.registry)

    def count_uploads(
        self, device: str, accepted: int = 0, rejected: int = 0, duplicate: int = 0
    ) -> None:
        # every outcome is touched, zeros too, so each series exists from the first upload
        for outcome, n in (
            ("accepted", accepted),
            ("rejected", rejected),
            ("duplicate", duplicate),
        ):
            self.uploads.labels(device=device, outcome=outcome).inc(n)

    def count_trainings(self, device: str, trained: int, skipped: int) -> None:
        for outcome, n in (("trained", trained), ("skipped", skipped)):
            self.trainings.labels(device=device, outcome=outcome).inc(n)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else OTHER_METHOD
        self.requests.labels(method=method, route=route, status=str(status)).inc()
        self.duration.labels(method=method, route=route).observe(seconds)


class RequestMetrics:
    """Pure ASGI middleware: counts and times every HTTP request by route *template*.

    The router stores the matched route in the scope (`scope["route"]`, FastAPI's
    APIRoute or Starlette's Route; also for a 405 on a known path) while it handles the
    request, so it is read after the app ran. The raw path is never a label: every
    device name or lease id would make a new series."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # an exception that escaped the app is answered 500 by the outer middleware
            self.metrics.observe_request(
                scope["method"], route_template(scope), status, time.perf_counter() - start
            )


def route_template(scope: Scope) -> str:
    """The matched route's path template, or UNMATCHED when no route took the request
    (the app has no Mounts, so the template is the whole path's)."""
    template = getattr(scope.get("route"), "path_format", None)
    return template if isinstance(template, str) else UNMATCHED
