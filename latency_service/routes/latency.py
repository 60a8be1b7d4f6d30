"""Latency reads: one op, a batch of keys, and a space's whole table (json, csv, or any
foreign format of profiler.lutformats).

These are the hot path, so they are async and served from the per-process read cache
(latency_service/cache.py); only a cache miss touches the database, off the event loop.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from latency_service.cache import ReadCache, Snapshot, predict, with_predicted
from latency_service.deps import ReaderDep, SettingsDep
from latency_service.errors import Invalid
from latency_service.formats import lut_csv, lut_foreign
from latency_service.repository import latency as repo
from latency_service.repository.devices import no_device
from latency_service.repository.ops import make_space, parse_keys, space_ops
from latency_service.routes._errors import http_errors
from latency_service.schemas import BatchOut, BatchRequest, LatencyOut, LutOut
from profiler.lutformats import create_format, list_formats

LUT_FORMATS = ("json", "csv", *list_formats())
MEDIA = {".yaml": "application/yaml", ".json": "application/json"}

router = APIRouter(prefix="/v1/devices", tags=["latency"], dependencies=[ReaderDep])


def _json(data: Any) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), media_type="application/json")


async def snapshot(request: Request, name: str) -> Snapshot:
    cache: ReadCache = request.app.state.cache
    snap = await cache.validated(name)
    if snap is None:
        raise HTTPException(404, no_device(name))
    return snap


def _not_measured(device: str, key: str, snap: Snapshot) -> str:
    kind = key.split("|", 1)[0]
    why = (
        f"op {key!r} is not measured on device {device!r}; queue it with "
        f"`hwlat jobs add --device {device} --op '{key}'` (POST /v1/devices/{device}/jobs "
        '{"ops": [...]}) and run an agent for the device'
    )
    if kind not in snap.predictors:
        why += (
            f", or train a predictor for {kind} ops with `hwlat train --device {device}` "
            "(POST /v1/devices/{d}/predictors:train) to get a predicted value"
        )
    return why


MeasuredOnly = Annotated[bool, Query(description="never answer with predicted values")]


async def _predicted(request: Request, snap: Snapshot, keys: list[str]) -> dict[str, Any]:
    if not keys or not snap.predictors:
        return {}
    return await run_in_threadpool(predict, request.app.state.cache, snap, keys)


@router.get("/{name}/latency", response_model=LatencyOut)
async def latency(
    name: str,
    request: Request,
    op: Annotated[str, Query(description="canonical op key")],
    measured_only: MeasuredOnly = False,
) -> Response:
    """The current measurement of one op, else a predicted value (`source: predicted`,
    with the predictor and its error), else 404 saying how to get it measured."""
    snap = await snapshot(request, name)
    if (body := snap.encoded(op)) is not None:
        return Response(body, media_type="application/json")
    with http_errors():
        parse_keys([op], field="op")  # a malformed key is a 422, not a 404
    hit = None if measured_only else (await _predicted(request, snap, [op])).get(op)
    if hit is None:
        raise HTTPException(404, _not_measured(name, op, snap))
    return _json(hit)


@router.post("/{name}/latency:batch", response_model=BatchOut)
async def latency_batch(
    name: str,
    body: BatchRequest,
    request: Request,
    settings: SettingsDep,
    measured_only: MeasuredOnly = False,
) -> Response:
    """Up to 10 000 keys in one call; keys neither measured nor predicted are `missing`."""
    if len(body.keys) > settings.max_batch_keys:
        raise HTTPException(
            422,
            f"keys: at most {settings.max_batch_keys} per call, got "
            f"{len(body.keys)}; split the batch",
        )
    snap = await snapshot(request, name)
    keys = list(dict.fromkeys(body.keys))
    with http_errors():
        parse_keys(body.keys, field="keys", skip=snap.latency)  # measured keys are valid
    unmeasured = [k for k in keys if k not in snap.latency]
    predicted = {} if measured_only else await _predicted(request, snap, unmeasured)
    results = {
        k: snap.latency.get(k) or predicted[k] for k in keys if k in snap.latency or k in predicted
    }
    return _json(
        {
            "device": name,
            "revision": snap.revision,
            "results": results,
            "missing": [k for k in keys if k not in results],
        }
    )


@router.get(
    "/{name}/lut",
    response_model=LutOut,
    responses={200: {"content": {"text/csv": {}, "application/yaml": {}, "text/plain": {}}}},
)
async def lut(
    name: str,
    request: Request,
    space: Annotated[str, Query(description="search space name")],
    resolution: Annotated[int | None, Query(ge=1, le=4096)] = None,
    width: Annotated[float, Query(gt=0, le=8)] = 1.0,
    classes: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    option: Annotated[list[str] | None, Query(description="NAME=INT, e.g. C=16")] = None,
    format: Annotated[
        str,
        Query(
            pattern="^(" + "|".join(LUT_FORMATS) + ")$",
            description="json, csv, or a foreign format: " + ", ".join(LUT_FORMATS[2:]),
        ),
    ] = "json",
    measured_only: MeasuredOnly = False,
) -> Response:
    """The latency table of a space for this device, with per-cell source (measured or
    predicted), confidence and coverage; in a foreign format, its measured cells only."""
    snap = await snapshot(request, name)
    with http_errors():
        options = _options(option or [])
    query = (space, resolution, width, classes, options, format, measured_only)
    cache: ReadCache = request.app.state.cache
    if (done := cache.rendered(snap, query)) is None:
        done = await _render_lut(request, snap, name, query)
        cache.keep_rendered(snap, query, done)  # valid as long as the snapshot is current
    body, media = done
    return Response(body, media_type=media)


async def _render_lut(
    request: Request, snap: Snapshot, name: str, query: tuple[Any, ...]
) -> tuple[bytes, str]:
    """A LUT response's body and media type (errors raise: they are never kept)."""
    space, resolution, width, classes, options, format, measured_only = query
    found: dict[str, Any] = snap.latency
    if not measured_only and snap.predictors:
        with http_errors():
            keys = [op.key for op in space_ops(space, resolution, width, classes, options)]
        found = await run_in_threadpool(with_predicted, request.app.state.cache, snap, keys)
    with http_errors():
        table = repo.lut(found, name, snap.revision, space, resolution, width, classes, options)
    if format == "csv":
        return lut_csv(table).encode(), "text/csv"
    if format != "json":
        fmt = create_format(format)
        slots = make_space(space, resolution, width, classes, options).slots()
        text = lut_foreign(fmt, table, slots, snap.latency, snap.imports, snap.files)
        return text.encode(), MEDIA.get(fmt.suffix, "text/plain")
    return json.dumps(table, separators=(",", ":")).encode(), "application/json"


def _options(items: list[str]) -> tuple[tuple[str, int], ...]:
    out = []
    for item in items:
        key, _, value = item.partition("=")
        if not key or not value.lstrip("-").isdigit():
            raise Invalid(f"option: expected NAME=INT, got {item!r}")
        out.append((key, int(value)))
    return tuple(sorted(out))
