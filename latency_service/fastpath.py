"""The hot read answered below FastAPI: `GET /v1/devices/{name}/latency?op=KEY` of a
measured op.

py-spy on one worker under 32 clients put ~70% of a lookup's CPU in FastAPI's routing
(a regex per route), dependency solving and response classes, and under 5% in the
lookup itself. `FastLookups` (pure ASGI, inside the metrics and body-limit middleware)
answers that one request shape from the read cache with the op's JSON encoded once per
snapshot; every other request, and every case that is not a plain hit (another query
parameter, token-protected reads, an unknown device, an op that is not measured, so a
predicted value, a 404 or a 422), goes on to the app, which answers as the route
documents. Both produce the same bytes (`Snapshot.encoded`); a test holds them equal.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from latency_service.cache import ReadCache

PATH = re.compile(r"/v1/devices/([^/]+)/latency")
TEMPLATE = "/v1/devices/{name}/latency"


class _Route:
    """What request metrics read of the matched route (`scope["route"]`): its template."""

    path_format = TEMPLATE


async def send_json(send: Send, status: int, body: bytes) -> None:
    """A whole JSON response written straight to ASGI, below any framework."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class FastLookups:
    def __init__(self, app: ASGIApp, cache: ReadCache, reads_open: bool):
        self.app, self.cache, self.reads_open = app, cache, reads_open
        self.route = _Route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        op = self._op(scope)
        if op is not None:
            scope["route"] = self.route  # counted under the template, a failed check too
            snap = await self.cache.validated(PATH.fullmatch(scope["path"]).group(1))  # type: ignore[union-attr]
            body = None if snap is None else snap.encoded(op)
            if body is not None:
                await send_json(send, 200, body)
                return
        await self.app(scope, receive, send)

    def _op(self, scope: Scope) -> str | None:
        """The op key when this is a plain open lookup, else None (the app answers)."""
        if not self.reads_open or scope["type"] != "http" or scope["method"] != "GET":
            return None
        if PATH.fullmatch(scope["path"]) is None:
            return None
        params = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if len(params) != 1 or params[0][0] != "op":
            return None
        return params[0][1]
