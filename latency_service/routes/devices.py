"""Devices: create (admin; returns the agent token once), list, show, tokens."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from latency_service.deps import AdminDep, ReaderDep, SessionDep
from latency_service.models import LutImport
from latency_service.repository import devices as repo
from latency_service.repository import work
from latency_service.repository.imports import refuse_imported
from latency_service.routes._errors import http_errors
from latency_service.schemas import (
    Coverage,
    DeviceCreate,
    DeviceCreated,
    DeviceOut,
    ImportOut,
    TokenOut,
    WorkItemOut,
)

router = APIRouter(prefix="/v1/devices", tags=["devices"])


def device_out(summary: repo.DeviceSummary) -> DeviceOut:
    d = summary.device
    return DeviceOut(
        name=d.name,
        runtime=d.runtime,
        revision=d.revision,
        source="imported" if d.source == "imported" else "measured",
        provenance=[import_out(row) for row in summary.imports],
        fingerprint_id=d.fingerprint_id,
        created_at=d.created_at,
        last_seen_at=d.last_seen_at,
        measurements=summary.measurements,
        work=summary.work,
        coverage=[Coverage.model_validate(c) for c in summary.coverage],
    )


def import_out(row: LutImport) -> ImportOut:
    return ImportOut(
        id=row.id,
        revision=row.revision,
        file_name=row.file_name,
        sha256=row.sha256,
        format=row.format,
        space=row.space,
        resolution=row.resolution,
        width=row.width,
        classes=row.classes,
        options=dict(repo.parse_options(row.options)),
        imported_at=row.imported_at,
        mapped=row.mapped,
        unfilled=len(row.unfilled),
        unmapped=len(row.unmapped),
        carried_from=row.carried_from,
    )


@router.post("", response_model=DeviceCreated, status_code=201, dependencies=[AdminDep])
def create_device(body: DeviceCreate, session: SessionDep) -> DeviceCreated:
    """Register a device; the answer holds its agent token, shown only this once."""
    with http_errors():
        device, token = repo.create_device(session, body.name, body.runtime)
        out = DeviceCreated(device=device_out(repo.summarize(session, device)), token=token)
    session.commit()
    return out


@router.get("", response_model=list[DeviceOut], dependencies=[ReaderDep])
def list_devices(session: SessionDep) -> list[DeviceOut]:
    return [device_out(repo.summarize(session, d)) for d in repo.list_devices(session)]


@router.get("/{name}", response_model=DeviceOut, dependencies=[ReaderDep])
def get_device(name: str, session: SessionDep) -> DeviceOut:
    with http_errors():
        return device_out(repo.summarize(session, repo.get_device(session, name)))


@router.post("/{name}/tokens", response_model=TokenOut, status_code=201, dependencies=[AdminDep])
def add_token(name: str, session: SessionDep) -> TokenOut:
    """Another agent token for the device (e.g. a second agent); shown only this once."""
    with http_errors():
        device = repo.get_device(session, name)
        refuse_imported(session, device, "have agent tokens")
        token = repo.add_token(session, device)
    session.commit()
    return TokenOut(prefix=token[:12], token=token)


@router.delete("/{name}/tokens/{prefix}", status_code=204, dependencies=[AdminDep])
def revoke_token(name: str, prefix: str, session: SessionDep) -> Response:
    """Revoke the token that starts with `prefix` (the first 12 characters)."""
    with http_errors():
        repo.revoke_token(session, repo.get_device(session, name), prefix)
    session.commit()
    return Response(status_code=204)


@router.get("/{name}/work", response_model=list[WorkItemOut], dependencies=[ReaderDep])
def list_work(
    name: str,
    session: SessionDep,
    state: Annotated[Literal["pending", "leased", "done", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[WorkItemOut]:
    """Work items of a device, newest first; `state=failed` shows what failed and why."""
    with http_errors():
        device = repo.get_device(session, name)
    return [
        WorkItemOut(
            item_id=i.id,
            kind=i.kind,
            key=i.op.key if i.op else None,
            network=i.network,
            state=i.state,
            attempts=i.attempts,
            last_error=i.last_error,
            updated_at=i.updated_at,
        )
        for i in work.list_work(session, device, state, limit)
    ]
