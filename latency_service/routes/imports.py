"""Imported devices: a foreign latency table (ProxylessNAS/OFA yaml, NNI lut.txt, ...)
becomes the numbers of a device of its own (admin), and its provenance can be read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from latency_service.deps import AdminDep, ReaderDep, SessionDep
from latency_service.repository import devices as devices_repo
from latency_service.repository import imports as repo
from latency_service.repository.ops import make_space
from latency_service.routes._errors import http_errors
from latency_service.routes.devices import import_out
from latency_service.schemas import NAME, ImportDetail, ImportRequest, ImportResult

router = APIRouter(prefix="/v1/devices", tags=["imports"])
DeviceName = Annotated[str, Path(pattern=NAME, description="the imported device")]


@router.post(
    "/{name}/imports", response_model=ImportResult, status_code=201, dependencies=[AdminDep]
)
def import_lut(
    name: DeviceName, body: ImportRequest, session: SessionDep, request: Request
) -> ImportResult:
    """Import a file as device `name`'s latencies (the device is created, `source:
    imported`, without agent tokens). The same file again changes nothing (`noop`); a
    different file for the same space configuration starts a new device revision."""
    with http_errors():
        table = repo.parse(body.content, body.file_name, body.format)
        options = tuple(sorted(body.options.items()))
        space = make_space(body.space, body.resolution, body.width, body.classes, options)
        out = repo.import_table(session, name, table, space, options)
        result = ImportResult(
            device=out.device.name,
            revision=out.device.revision,
            created_device=out.created_device,
            noop=out.noop,
            mapped=out.row.mapped,
            unfilled=[(a, b) for a, b in out.row.unfilled],
            unmapped=[(a, b) for a, b in out.row.unmapped],
            sha256=out.row.sha256,
            format=out.row.format,
        )
    session.commit()
    request.app.state.cache.invalidate(name)  # a new revision changes every read
    return result


@router.get("/{name}/imports", response_model=list[ImportDetail], dependencies=[ReaderDep])
def list_imports(name: str, session: SessionDep) -> list[ImportDetail]:
    """Every file imported into the device, newest revision first (empty: measured)."""
    with http_errors():
        device = devices_repo.get_device(session, name)
    return [
        ImportDetail(
            **import_out(row).model_dump(),
            unfilled_ops=[(a, b) for a, b in row.unfilled],
            unmapped_keys=[(a, b) for a, b in row.unmapped],
        )
        for row in repo.imports(session, device)
    ]
