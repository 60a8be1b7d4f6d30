"""Predictors: train them (admin) and read how good they are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from latency_service.deps import AdminDep, MetricsDep, ReaderDep, SessionDep
from latency_service.models import Predictor
from latency_service.repository import devices as devices_repo
from latency_service.repository import predictors as repo
from latency_service.repository import quiet, uncertainty
from latency_service.routes._errors import http_errors
from latency_service.schemas import (
    PredictorOut,
    QuietOut,
    RepeatabilityOut,
    TrainOut,
    TrainRequest,
)

router = APIRouter(prefix="/v1/devices", tags=["predictors"])


def predictor_out(row: Predictor, heldout: bool = False) -> PredictorOut:
    return PredictorOut(
        kind=row.kind,
        version=row.version,
        model=row.model,
        dtype=row.dtype,
        samples=row.samples,
        metrics=row.metrics,
        sklearn_version=row.sklearn_version,
        trained_at=row.trained_at,
        drift=row.drift,
        heldout=row.heldout if heldout else None,
    )


@router.post("/{name}/predictors:train", response_model=TrainOut, dependencies=[AdminDep])
def train(
    name: str, body: TrainRequest, session: SessionDep, metrics: MetricsDep, request: Request
) -> TrainOut:
    """Train a predictor per op kind from the device's measurements (k-fold CV picks the
    model); kinds with too few measurements are skipped with the reason. Beside the
    held-out shares: how well the labels repeat (retests) and the shares on the quiet
    labels alone."""
    with http_errors():
        device = devices_repo.get_device(session, name)
        made, skipped = repo.train_device(session, device, body.kinds, body.models)
        kinds = [p.kind for p in made]
        repeats = uncertainty.repeatability(session, device, kinds) if made else {}
        shares = {p.kind: quiet.quiet_metrics(session, device, p) for p in made}
    session.commit()
    request.app.state.cache.invalidate(name)
    metrics.count_trainings(device.name, trained=len(made), skipped=len(skipped))
    return TrainOut(
        trained=[predictor_out(p) for p in made],
        skipped=skipped,
        repeatability={k: RepeatabilityOut(**v) for k, v in repeats.items()},
        quiet_labels={k: QuietOut(**v) for k, v in shares.items() if v is not None},
    )


@router.get("/{name}/predictors", response_model=list[PredictorOut], dependencies=[ReaderDep])
def list_predictors(
    name: str,
    session: SessionDep,
    heldout: Annotated[
        bool, Query(description="include the held-out (measured, predicted) pairs")
    ] = False,
) -> list[PredictorOut]:
    """The current predictor of each kind, with its held-out accuracy."""
    with http_errors():
        device = devices_repo.get_device(session, name)
    return [predictor_out(p, heldout) for p in repo.latest(session, device).values()]
