"""Profiling work: enqueue a space, an explicit op list, ops near a predictor's worst
errors, the ops a device measured while disturbed, or random measured ops once more (a
retest), for a device; or cancel what is still pending (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from latency_service.deps import AdminDep, SessionDep, SettingsDep
from latency_service.repository import cancel, networks, remeasure, retest, work
from latency_service.repository import devices as devices_repo
from latency_service.repository import ops as ops_repo
from latency_service.repository import predictors as predictors_repo
from latency_service.repository.imports import refuse_imported
from latency_service.routes._errors import http_errors
from latency_service.schemas import (
    CancelRequest,
    CancelResult,
    JobRequest,
    JobResult,
    RefineRequest,
    RefineResult,
    RemeasureRequest,
    RemeasureResult,
    RetestRequest,
    RetestResult,
)

router = APIRouter(prefix="/v1/devices", tags=["jobs"])


@router.post("/{name}/jobs", response_model=JobResult, dependencies=[AdminDep])
def enqueue(name: str, body: JobRequest, session: SessionDep) -> JobResult:
    """Queue every op of a space (or the listed ops) that is neither measured nor queued."""
    with http_errors():
        device = devices_repo.get_device(session, name)
        refuse_imported(session, device, "queue work")
        if body.networks is not None:
            counts = networks.enqueue_networks(session, device, body.networks)
            session.commit()
            return JobResult(**counts)
        if body.ops is not None:
            specs = ops_repo.parse_keys(body.ops)
        else:
            assert body.space is not None  # the schema demands one of the two
            options = tuple(sorted(body.options.items()))
            specs = ops_repo.space_ops(
                body.space, body.resolution, body.width, body.classes, options
            )
            space = ops_repo.make_space(
                body.space, body.resolution, body.width, body.classes, options
            )
            devices_repo.add_space_target(session, device, space, options)
        counts = work.enqueue_ops(session, device, specs)
    session.commit()
    return JobResult(**counts)


@router.post("/{name}/jobs:refine", response_model=RefineResult, dependencies=[AdminDep])
def refine(name: str, body: RefineRequest, session: SessionDep) -> RefineResult:
    """Queue `n` new ops near the training ops the kind's current predictor gets most
    wrong (held-out error; the worst `worst_fraction` of them), in proportion to that
    error. Counted as in /jobs: only ops neither measured nor queued are queued."""
    with http_errors():
        device = devices_repo.get_device(session, name)
        refuse_imported(session, device, "queue work near a predictor's errors")
        counts = predictors_repo.refine(
            session, device, body.kind, body.n, body.seed, body.worst_fraction
        )
    session.commit()
    return RefineResult(**counts)


@router.post("/{name}/jobs:remeasure", response_model=RemeasureResult, dependencies=[AdminDep])
def remeasure_disturbed(
    name: str, body: RemeasureRequest, session: SessionDep, settings: SettingsDep
) -> RemeasureResult:
    """Queue once more every op (of `kind`) whose newest measurement at the device's
    revision was taken in a batch whose reference panel ran beyond HWLAT_REMEASURE_DRIFT
    of the baseline, or whose CI is wider than HWLAT_REMEASURE_CI: what uploads do from
    now on, applied to what is already stored. At most 1 + HWLAT_REMEASURE_MAX
    measurements per op."""
    with http_errors():
        device = devices_repo.get_device(session, name)
        refuse_imported(session, device, "measure ops again")
        counts = remeasure.sweep(session, device, settings.remeasure_rules(), body.kind)
    session.commit()
    return RemeasureResult(**counts)


@router.post("/{name}/jobs:retest", response_model=RetestResult, dependencies=[AdminDep])
def retest_ops(name: str, body: RetestRequest, session: SessionDep) -> RetestResult:
    """Queue `n` random ops of `kind` that the device measured at its revision (not
    retested and not queued yet) once more, so that GET .../repeatability can say how
    well its labels repeat: an unbiased sample, unlike the re-measuring rules' repeats."""
    with http_errors():
        device = devices_repo.get_device(session, name)
        refuse_imported(session, device, "retest ops")
        counts = retest.queue(session, device, body.kind, body.n, body.seed)
    session.commit()
    return RetestResult(**counts)


@router.post("/{name}/jobs:cancel", response_model=CancelResult, dependencies=[AdminDep])
def cancel_pending(name: str, body: CancelRequest, session: SessionDep) -> CancelResult:
    """Take the device's pending items out of its queue: all of them, or those of one op
    kind ('network' for network items) or queued for one reason, at most `newest` of
    them, the last queued first. Items an agent holds are left to finish."""
    with http_errors():
        device = devices_repo.get_device(session, name)
        counts = cancel.cancel(session, device, body.kind, body.reason, body.newest)
    session.commit()
    return CancelResult(**counts)
