"""Drift: how steady a device's machine was while its agents measured (reference panel),
and how well its measurements repeat (retests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from latency_service.deps import ReaderDep, SessionDep, SettingsDep
from latency_service.repository import devices as devices_repo
from latency_service.repository import reference as repo
from latency_service.repository import uncertainty
from latency_service.routes._errors import http_errors
from latency_service.schemas import (
    DriftOut,
    DriftRunOut,
    RepeatabilityOut,
    RepeatabilityReport,
)
from profiler.reference import PANEL

router = APIRouter(prefix="/v1/devices", tags=["drift"])


@router.get("/{name}/drift", response_model=DriftOut, dependencies=[ReaderDep])
def drift(
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    revision: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="default: the current one")
    ] = None,
) -> DriftOut:
    """Per agent run, the reference panel's drift factor (geometric mean of the panel
    blocks' medians over the revision's baseline) and how many batches were flagged."""
    with http_errors():
        device = devices_repo.get_device(session, name)
    rev = device.revision if revision is None else revision
    rows = repo.readings(session, device, rev)
    runs = repo.drift_by_run(session, rows, settings.drift_tolerance)
    return DriftOut(
        device=device.name,
        revision=rev,
        panel=PANEL,
        tolerance=settings.drift_tolerance,
        baseline_ms=repo.baseline(rows),
        readings=len(rows),
        flagged=sum(r.flagged for r in runs),
        runs=[DriftRunOut.model_validate(r, from_attributes=True) for r in runs],
    )


@router.get("/{name}/repeatability", response_model=RepeatabilityReport, dependencies=[ReaderDep])
def repeatability(
    name: str,
    session: SessionDep,
    kind: Annotated[list[str] | None, Query(description="default: every retested kind")] = None,
) -> RepeatabilityReport:
    """Per kind, how well retests (POST .../jobs:retest) repeat the labels of the ops
    they measured again, at the device's current revision, and how the intervals
    lookups report (with the between-session term) cover them."""
    with http_errors():
        device = devices_repo.get_device(session, name)
        found = uncertainty.repeatability(session, device, kind)
    return RepeatabilityReport(
        device=device.name,
        revision=device.revision,
        kinds={k: RepeatabilityOut(**v) for k, v in found.items()},
    )
