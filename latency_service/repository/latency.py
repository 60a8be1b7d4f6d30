"""Latency lookups: the current measurement of an op on a device (its newest, at the
device's current revision), one key, many keys, or a whole space's table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from latency_service.models import Device, Measurement, Op
from latency_service.repository.ops import chunks, make_space, space_ops


def all_current(s: Session, device: Device) -> dict[str, Measurement]:
    """Every op's newest measurement at the device's revision (one query)."""
    newest = (
        select(func.max(Measurement.id).label("mid"))
        .where(Measurement.device_id == device.id, Measurement.revision == device.revision)
        .group_by(Measurement.op_id)
        .subquery()
    )
    rows = s.execute(
        select(Op.key, Measurement)
        .join(newest, Measurement.id == newest.c.mid)
        .join(Op, Op.id == Measurement.op_id)
    )
    return {key: m for key, m in rows}


def measured_op_ids(s: Session, device: Device, keys: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(keys):
        found.update(
            s.scalars(
                select(Op.key)
                .join(Measurement, Measurement.op_id == Op.id)
                .where(
                    Measurement.device_id == device.id,
                    Measurement.revision == device.revision,
                    Op.key.in_(chunk),
                )
                .distinct()
            )
        )
    return found


IMPORT_REF = ("file", "sha256", "format", "statistic")  # what a read says of an imported value


def imported_ref(m: Measurement) -> dict[str, Any] | None:
    """Where an imported value came from (None: measured by the device's own agents)."""
    info = m.extra.get("import")
    if info is None:
        return None
    return {k: info[k] for k in IMPORT_REF}


def _cell(key: str, found: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    m = found.get(key)
    if m is None:
        return {"key": key, "ms": None, "source": "missing"}
    if m["source"] == "predicted":
        return {
            "key": key,
            "ms": m["median_ms"],
            "source": "predicted",
            "error_ms": m["error_ms"],
            "predictor_version": m["predictor"]["version"],
        }
    return {
        "key": key,
        "ms": m["median_ms"],
        "source": "measured",
        "ci_half_width_ms": m["ci_half_width_ms"],
        "within_ci_half_width_ms": m.get("within_ci_half_width_ms"),
        "ci_basis": m.get("ci_basis"),
        "stable": m["stable"],
        "repeat_rel_error": m.get("repeat_rel_error"),
        "imported": m.get("imported"),
    }


def lut(
    found: Mapping[str, dict[str, Any]],
    device: str,
    revision: int,
    name: str,
    resolution: int | None,
    width: float,
    classes: int | None,
    options: tuple[tuple[str, int], ...] = (),
) -> dict[str, Any]:
    """The latency table of a space from a device's `key -> latency dict` (measured
    ops): fixed cells, layers x candidates cells (null where illegal), coverage."""
    space = make_space(name, resolution, width, classes, options)
    keys = [op.key for op in space_ops(name, resolution, width, classes, options)]
    layers = [
        {
            "name": layer.name,
            "group": layer.group,
            "cells": {c.name: (_cell(c.op.key, found) if c.op else None) for c in layer.choices},
        }
        for layer in space.layers()
    ]
    measured = sum(1 for k in keys if k in found and found[k]["source"] == "measured")
    predicted = sum(1 for k in keys if k in found and found[k]["source"] == "predicted")
    return {
        "device": device,
        "revision": revision,
        "space": name,
        "resolution": space.resolution,
        "width": space.width,
        "classes": space.classes,
        "candidates": list(space.candidates),
        "fixed": [_cell(op.key, found) for op in space.fixed_ops()],
        "layers": layers,
        "coverage": {
            "space": name,
            "resolution": space.resolution,
            "width": space.width,
            "classes": space.classes,
            "options": dict(options),
            "measured": measured,
            "predicted": predicted,
            "total": len(keys),
            "fraction": measured / len(keys) if keys else 0.0,
        },
    }
