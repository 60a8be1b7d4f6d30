"""Domain errors -> HTTP answers (the only place besides deps that speaks HTTP codes)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from latency_service.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError

STATUS = {NotFound: 404, Conflict: 409, Invalid: 422, Forbidden: 403}


@contextmanager
def http_errors() -> Iterator[None]:
    try:
        yield
    except ServiceError as exc:
        raise HTTPException(STATUS.get(type(exc), 400), str(exc)) from None


def _json_safe(value: Any) -> Any:
    """NaN and infinities as strings: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 answer, but one that survives a NaN or Infinity in the input it
    echoes (the default handler fails to encode those and answers 500)."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(
        status_code=422, content={"detail": _json_safe(jsonable_encoder(exc.errors()))}
    )
