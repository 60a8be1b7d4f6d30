"""Whole-network estimates: the table sum of an architecture, and its calibrated value."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from latency_service.cache import Snapshot, predict
from latency_service.deps import ReaderDep
from latency_service.predictors.calibration import MIN_NETWORKS, fit
from latency_service.repository import networks as networks_repo
from latency_service.repository.ops import make_space, parse_keys
from latency_service.routes._errors import http_errors
from latency_service.routes.latency import snapshot
from latency_service.schemas import EstimateOut, EstimateRequest, NetworkOut

router = APIRouter(prefix="/v1/devices", tags=["estimates"], dependencies=[ReaderDep])


def arch_keys(spec: Any) -> list[str]:
    options = tuple(sorted(spec.options.items()))
    space = make_space(spec.space, spec.resolution, spec.width, spec.classes, options)
    try:
        return [op.key for op in space.arch_ops(space.parse_arch(spec.arch))]
    except ValueError as exc:
        raise HTTPException(422, f"arch: {exc}") from None


def table_sum(request: Request, snap: Snapshot, keys: list[str]) -> dict[str, Any]:
    """Sum of measured (else predicted) per-op latencies, with the sum's error."""
    unmeasured = [k for k in dict.fromkeys(keys) if k not in snap.latency]
    predicted = predict(request.app.state.cache, snap, unmeasured) if snap.predictors else {}
    total, var, n_meas, n_pred, missing = 0.0, 0.0, 0, 0, []
    for key in keys:
        hit = snap.latency.get(key) or predicted.get(key)
        if hit is None:
            missing.append(key)
            continue
        total += hit["median_ms"]
        if hit["source"] == "measured":
            n_meas += 1
            # the total half-width (own CI and the between-session term). The latter is
            # correlated across one network's ops (a slow session slows all of them: one
            # machine state), so this quadrature sum understates the network's spread
            # between sessions (the calibrated error, from end-to-end runs, includes it)
            var += (hit["ci_half_width_ms"] or 0.0) ** 2
        else:
            n_pred += 1
            var += hit["error_ms"] ** 2
    return {
        "ops": len(keys),
        "table_sum_ms": total,
        "table_error_ms": math.sqrt(var),
        "measured_ops": n_meas,
        "predicted_ops": n_pred,
        "missing": sorted(set(missing)),
    }


def calibration_points(request: Request, snap: Snapshot) -> list[tuple[Any, dict[str, Any]]]:
    """The device revision's end-to-end network measurements, each with its table sum
    (networks with an op that is neither measured nor predictable are left out)."""
    with request.app.state.sessions() as s:
        rows = networks_repo.measurements(s, snap.device_id, snap.revision)
    points = []
    for row in rows:
        t = table_sum(request, snap, arch_keys(_NetSpec(dict(row.arch))))
        if not t["missing"]:
            points.append((row, t))
    return points


def scope_of(spec: Any) -> str:
    """The networks a calibration is fitted on: one space at one resolution, width and
    class count. Their overhead differs, so pooling scopes fits each worse (docs/
    BENCHMARKS.md, issue 6 fifth figures)."""
    options = tuple(sorted(spec.options.items()))
    space = make_space(spec.space, spec.resolution, spec.width, spec.classes, options)
    extra = "".join(f" {k}={v}" for k, v in options)
    return f"{space.name}@{space.resolution} ×{space.width:g} {space.classes} classes{extra}"


def calibration(request: Request, snap: Snapshot, scope: str | None) -> tuple[Any, str]:
    """The device revision's calibration for networks of `scope`, fitted on its
    end-to-end measurements of that scope, or on all of them when the scope has fewer
    than MIN_NETWORKS (or the request is an op list); with what it was fitted on. A
    string instead of a Calibration says why there is none."""
    points = calibration_points(request, snap)
    same = [p for p in points if scope is not None and row_scope(p[0]) == scope]
    chosen, label = points, "all networks"
    if scope is not None and len(same) >= MIN_NETWORKS:
        chosen, label = same, scope
    sums = [t["table_sum_ms"] for _, t in chosen]
    ops = [t["ops"] for _, t in chosen]
    measured = [row.median_ms for row, _ in chosen]
    try:
        return fit(sums, ops, measured), label
    except ValueError as exc:
        return str(exc), label


def row_scope(row: Any) -> str:
    """The scope of a stored network measurement."""
    return scope_of(_NetSpec(dict(row.arch)))


class _NetSpec:
    """A stored network JSON seen as an EstimateRequest."""

    def __init__(self, net: dict[str, Any]):
        self.space, self.resolution = net["space"], net["resolution"]
        self.width, self.classes = net["width"], net["classes"]
        self.options = net.get("options", {})
        self.arch = {k: v for k, v in net.items() if k not in ("options", "arch_hash")}


@router.post("/{name}/networks:estimate", response_model=EstimateOut)
async def estimate(name: str, body: EstimateRequest, request: Request) -> dict[str, Any]:
    """Estimate a whole network: table sum (measured or predicted ops), and the sum
    calibrated on this device's end-to-end measurements, each with its error."""
    snap = await snapshot(request, name)
    with http_errors():
        keys = arch_keys(body) if body.ops is None else [s.key for s in parse_keys(body.ops)]
    result = await run_in_threadpool(table_sum, request, snap, keys)
    if result["missing"]:
        raise HTTPException(
            404,
            f"{len(result['missing'])} op(s) of this network are neither "
            f"measured nor predictable on {name!r} (first: "
            f"{result['missing'][0]}); queue them with `hwlat jobs add` or "
            "train predictors with `hwlat train`",
        )
    scope = scope_of(body) if body.ops is None else None
    fitted = snap.calibration.get(scope)
    if fitted is None:  # fitted once per snapshot: a new network measurement reloads it
        fitted = snap.calibration[scope] = await run_in_threadpool(
            calibration, request, snap, scope
        )
    cal, fitted_on = fitted
    if isinstance(cal, str):
        return {
            **result,
            "calibrated_ms": None,
            "calibrated_error_ms": None,
            "calibration": {"available": False, "reason": cal, "scope": fitted_on},
        }
    calibrated = cal.apply(result["table_sum_ms"], result["ops"])
    return {
        **result,
        "calibrated_ms": calibrated,
        "calibrated_error_ms": calibrated * cal.rmspe,
        "calibration": {
            "available": True,
            "scope": fitted_on,
            "networks": cal.networks,
            "rmspe": cal.rmspe,
            "within_5pct": cal.within_5pct,
            "within_10pct": cal.within_10pct,
            "raw_rmspe": cal.raw_rmspe,
            "form": cal.form,
            "coef": list(cal.coef),
            "intercept": cal.intercept,
        },
    }


@router.get("/{name}/networks", response_model=list[NetworkOut])
async def networks(
    name: str,
    request: Request,
    space: str | None = None,
    resolution: Annotated[int | None, Query(ge=1, le=4096)] = None,
) -> list[dict[str, Any]]:
    """End-to-end network measurements of the device's current revision."""
    snap = await snapshot(request, name)

    def load() -> list[dict[str, Any]]:
        with request.app.state.sessions() as s:
            rows = networks_repo.measurements(s, snap.device_id, snap.revision, space, resolution)
            return [
                {
                    "arch_hash": r.arch_hash,
                    "arch": r.arch,
                    "median_ms": r.median_ms,
                    "ci_half_width_ms": r.ci_half_width_ms,
                    "stable": r.stable,
                    "run_id": r.run_id,
                    "measured_at": r.created_at,
                }
                for r in rows
            ]

    return await run_in_threadpool(load)
