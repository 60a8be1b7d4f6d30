"""The agent side of the queue (device token): lease, heartbeat, upload, release."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from latency_service.deps import AgentDevice, MetricsDep, SessionDep, SettingsDep
from latency_service.repository import devices as devices_repo
from latency_service.repository import work
from latency_service.repository.imports import refuse_imported
from latency_service.routes._errors import http_errors
from latency_service.schemas import (
    AgentDeviceOut,
    AgentHello,
    Lease,
    LeaseItem,
    LeaseRequest,
    Release,
    Upload,
    UploadOut,
)
from profiler.reference import PANEL

router = APIRouter(prefix="/v1/agent", tags=["agent"])


@router.get("/me", response_model=AgentDeviceOut)
def me(device: AgentDevice, session: SessionDep) -> AgentDeviceOut:
    """The device this token belongs to, and how much work is pending for it."""
    work = devices_repo.summarize(session, device).work
    return AgentDeviceOut(
        device=device.name,
        runtime=device.runtime,
        revision=device.revision,
        fingerprint_id=device.fingerprint_id,
        pending=work.get("pending", 0),
        leased=work.get("leased", 0),
        reference_panel=PANEL,
    )


@router.post("/hello", response_model=AgentDeviceOut)
def hello(
    body: AgentHello, device: AgentDevice, session: SessionDep, request: Request
) -> AgentDeviceOut:
    """Register the agent's fingerprint (409 when it differs, unless new_revision)."""
    with http_errors():
        refuse_imported(session, device, "be measured by an agent")
        devices_repo.hello(
            session, device, body.fingerprint, body.fingerprint_id, body.runtime, body.new_revision
        )
    session.commit()
    request.app.state.cache.invalidate(device.name)  # a new revision changes every read
    return me(device, session)


@router.post("/lease", response_model=Lease)
def lease(
    body: LeaseRequest,
    device: AgentDevice,
    session: SessionDep,
    settings: SettingsDep,
    metrics: MetricsDep,
) -> Lease:
    """Lease up to `max_items` pending items of the token's device (none: empty list)."""
    with http_errors():
        refuse_imported(session, device, "lease work to an agent")
    leased = work.lease(session, device, body.max_items, settings.lease_s, settings.max_attempts)
    out = Lease(
        lease_id=leased.lease_id,
        expires_at=leased.expires,
        items=[
            LeaseItem(
                item_id=i.id,
                kind="network" if i.kind == "network" else "op",
                key=i.op.key if i.op else None,
                op=i.op.spec if i.op else None,
                network=i.network,
                attempts=i.attempts,
            )
            for i in leased.items
        ],
    )
    session.commit()
    # expired leases are found here, when the device's agents next ask for work
    metrics.leases_expired.labels(device=device.name).inc(leased.expired)
    return out


@router.post("/leases/{lease_id}/heartbeat", response_model=Lease)
def heartbeat(
    lease_id: str, device: AgentDevice, session: SessionDep, settings: SettingsDep
) -> Lease:
    """Extend a lease while its items are being measured."""
    with http_errors():
        expires = work.heartbeat(session, device, lease_id, settings.lease_s)
    session.commit()
    return Lease(lease_id=lease_id, expires_at=expires, items=[])


@router.post("/leases/{lease_id}/results", response_model=UploadOut)
def upload(
    lease_id: str,
    body: Upload,
    device: AgentDevice,
    session: SessionDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    request: Request,
) -> UploadOut:
    """Results and typed errors of a lease; safe to retry (same run_id = no duplicates)."""
    try:
        with http_errors():
            refuse_imported(session, device, "take an agent's results")
            counts = work.upload(
                session,
                device,
                lease_id,
                body.run_id,
                body.results,
                body.errors,
                settings.max_attempts,
                body.reference,
                settings.remeasure_rules(),
            )
    except HTTPException:  # the whole upload refused: none of its results was stored
        metrics.count_uploads(device.name, rejected=len(body.results))
        raise
    session.commit()
    request.app.state.cache.invalidate(device.name)  # this worker's readers see it at once
    # each result is accepted, rejected or a duplicate; the repository's "duplicates" also
    # counts repeated error reports, which are not results
    accepted, rejected = counts["accepted"], counts["rejected"]
    metrics.count_uploads(device.name, accepted, rejected, len(body.results) - accepted - rejected)
    return UploadOut(**counts)


@router.post("/leases/{lease_id}/release", response_model=UploadOut)
def release(lease_id: str, body: Release, device: AgentDevice, session: SessionDep) -> UploadOut:
    """Give back leased items that will not be measured (the agent is stopping)."""
    with http_errors():
        n = work.release(session, device, lease_id, body.item_ids)
    session.commit()
    return UploadOut(accepted=0, duplicates=0, rejected=0, failed=0, requeued=n)
