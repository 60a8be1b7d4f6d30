"""Imported devices: a foreign latency table (profiler.lutformats) stored as the
measurements of a device of its own, `source = "imported"`, with its provenance.

One device revision holds at most one file per space configuration (OFA ships one file
per resolution). Importing the same file again is a no-op; a different file makes a new
revision, into which the other configurations' files are carried (their rows copied),
so reads of the device never mix numbers of two versions of one configuration's file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from latency_service.errors import Conflict, Invalid
from latency_service.models import Device, LutImport, Measurement
from latency_service.repository import devices
from latency_service.repository.devices import add_space_target, options_text
from latency_service.repository.ops import ensure_ops
from profiler.lutformats import Cell, ForeignTable, Mapped, map_entries, parse_bytes
from searchers.spaces import SearchSpace

IMPORTED = "imported"
Z95 = 1.96  # a file's std and count give the 95% CI of its mean
Options = tuple[tuple[str, int], ...]


@dataclass
class ImportOutcome:
    device: Device
    row: LutImport  # the new import, or (no-op) the one already there
    created_device: bool
    noop: bool


def parse(content: str, file_name: str, fmt: str | None) -> ForeignTable:
    """The file's entries; Invalid (one line naming the file) when it cannot be read."""
    try:
        return parse_bytes(content.encode(), file_name, fmt)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def run_id(sha256: str) -> str:
    return f"import:{sha256[:16]}"


def current(s: Session, device: Device) -> list[LutImport]:
    """The device's imports at its current revision (its provenance), oldest first."""
    return list(
        s.scalars(
            select(LutImport)
            .where(LutImport.device_id == device.id, LutImport.revision == device.revision)
            .order_by(LutImport.id)
        )
    )


def imports(s: Session, device: Device) -> list[LutImport]:
    """Every import of the device, newest revision first."""
    return list(
        s.scalars(
            select(LutImport)
            .where(LutImport.device_id == device.id)
            .order_by(LutImport.revision.desc(), LutImport.id)
        )
    )


def describe(row: LutImport) -> str:
    return (
        f"{row.file_name} ({row.format}, sha256 {row.sha256[:12]}, "
        f"imported {row.imported_at:%Y-%m-%d})"
    )


def refuse_imported(s: Session, device: Device, doing: str) -> None:
    """Conflict for what only a measured device can do (agents, queued work, tokens)."""
    if device.source != IMPORTED:
        return
    files = ", ".join(describe(r) for r in current(s, device)) or "a file"
    raise Conflict(
        f"device {device.name!r} holds latencies imported from {files}; no agent measures "
        f"it, so it cannot {doing}. To measure that machine, register it as a device of its "
        "own (`hwlat devices add NAME --runtime R`); to change its numbers, import a newer "
        f"file (POST /v1/devices/{device.name}/imports)"
    )


def _config(space: SearchSpace, options: Options) -> tuple[str, int, float, int, str]:
    return (space.name, space.resolution, space.width, space.classes, options_text(options))


def _config_of(row: LutImport) -> tuple[str, int, float, int, str]:
    return (row.space, row.resolution, row.width, row.classes, row.options)


def _device(s: Session, name: str, table: ForeignTable) -> tuple[Device, bool]:
    device = s.scalar(select(Device).where(Device.name == name))
    if device is not None:
        if device.source != IMPORTED:
            raise Conflict(
                f"device {name!r} is measured by its own agents and a file's numbers are "
                f"never mixed with theirs: import {table.file_name} under another name "
                f"(e.g. {name}-{table.fmt.name.split('-')[0]})"
            )
        return device, False
    device = Device(name=name, runtime=IMPORTED, source=IMPORTED)  # no agent token
    s.add(device)
    try:
        s.flush()
    except IntegrityError:
        raise Conflict(f"device {name!r} was created meanwhile; import again") from None
    return device, True


def _fills_nothing(table: ForeignTable, space: SearchSpace, mapped: Mapped) -> Invalid:
    hints = []
    given = {"resolution": space.resolution, "classes": space.classes}
    guessed = {k: v for k, v in table.fmt.infer(table.entries).items() if given.get(k) != v}
    if guessed:
        hints.append("the file looks like " + ", ".join(f"{k} {v}" for k, v in guessed.items()))
    if mapped.unmapped:
        key, why = mapped.unmapped[0]
        hints.append(f"e.g. {key}: {why}")
    return Invalid(
        f"{table.file_name} ({table.fmt.name}): none of its {len(table.entries)} entries fills "
        f"an op of {space.name}@{space.resolution} (width {space.width}, classes "
        f"{space.classes}); check the space configuration or the format"
        + "".join(f"; {h}" for h in hints)
    )


def _check_space(table: ForeignTable, space: SearchSpace) -> None:
    """A file that says its resolution or class count is not imported as another."""
    for name, got in table.fmt.infer(table.entries).items():
        want = space.params().get(name)
        if want is not None and got != want:
            raise Invalid(
                f"{table.file_name} ({table.fmt.name}) is a table for {name} {got}, not "
                f"{want}: import it with {name} {got}"
            )


def import_table(
    s: Session, device_name: str, table: ForeignTable, space: SearchSpace, options: Options
) -> ImportOutcome:
    """Store a file's numbers as device `device_name`'s (created if absent), in the
    caller's transaction: nothing is written when this raises."""
    device, created = _device(s, device_name, table)
    if not created:  # two imports to one device take turns (each makes a new revision)
        devices.lock(s, device)
    cfg = _config(space, options)
    now = current(s, device)
    same = [r for r in now if _config_of(r) == cfg]
    if same and (same[-1].sha256, same[-1].format) == (table.sha256, table.fmt.name):
        return ImportOutcome(device, same[-1], created, noop=True)
    _check_space(table, space)
    mapped = map_entries(table.fmt, table.entries, space.slots())
    if not any(cell.parts for cell in mapped.cells.values()):  # free cells alone: nothing
        raise _fills_nothing(table, space, mapped)
    if now:  # a different file: a new revision, the other configurations' files carried
        device.revision += 1
        for row in now:
            if _config_of(row) != cfg:
                _carry(s, device, row)
    row = LutImport(
        device_id=device.id,
        revision=device.revision,
        file_name=table.file_name,
        sha256=table.sha256,
        format=table.fmt.name,
        space=cfg[0],
        resolution=cfg[1],
        width=cfg[2],
        classes=cfg[3],
        options=cfg[4],
        entries={k: e.to_dict() for k, e in table.entries.items()},
        mapped=len(mapped.cells),
        unfilled=[list(u) for u in mapped.unfilled],
        unmapped=[list(u) for u in mapped.unmapped],
    )
    s.add(row)
    s.flush()
    _store_cells(s, device, row, table, space, mapped)
    add_space_target(s, device, space, options)
    s.flush()
    return ImportOutcome(device, row, created, noop=False)


def _store_cells(
    s: Session,
    device: Device,
    row: LutImport,
    table: ForeignTable,
    space: SearchSpace,
    mapped: Mapped,
) -> None:
    specs = {slot.op.key: slot.op for slot in space.slots() if slot.op.key in mapped.cells}
    ops = ensure_ops(s, specs.values())
    for key, cell in mapped.cells.items():
        s.add(
            Measurement(
                device_id=device.id,
                revision=device.revision,
                op_id=ops[key].id,
                run_id=run_id(table.sha256),
                **_statistics(cell),
                runtime={"runtime": IMPORTED, "format": table.fmt.name},
                host_state={},
                extra={"import": _provenance(row, table, cell)},
            )
        )
    s.flush()


def _statistics(cell: Cell) -> dict[str, Any]:
    """What a file's cell says, and nothing more: its statistic (a mean), its spread
    and count where it has them; no percentiles. The CI is that of the mean."""
    known = cell.std_ms is not None and cell.count is not None and cell.count > 1
    ci = Z95 * cell.std_ms / math.sqrt(cell.count) if known else None  # type: ignore[operator, arg-type]
    return {
        "median_ms": cell.ms,
        "mean_ms": cell.ms,
        "std_ms": cell.std_ms,
        "min_ms": None,
        "p10_ms": None,
        "p90_ms": None,
        "iqr_ms": None,
        "samples": cell.count or 1,
        "calls_per_sample": 1,
        "ci_half_width_ms": ci,
        "target_met": False,
        "stable": ci is not None,
        "first_call_ms": None,
    }


def _provenance(row: LutImport, table: ForeignTable, cell: Cell) -> dict[str, Any]:
    return {
        "id": row.id,
        "file": table.file_name,
        "sha256": table.sha256,
        "format": table.fmt.name,
        "statistic": table.fmt.statistic,
        "count": cell.count,
        "parts": {k: e.to_dict() for k, e in cell.parts.items()},
        "note": cell.note,
    }


def _carry(s: Session, device: Device, old: LutImport) -> None:
    """Copy an import of the previous revision, and its measurements, into the current."""
    new = LutImport(
        **{c: getattr(old, c) for c in _COPIED},
        device_id=device.id,
        revision=device.revision,
        carried_from=old.id,
    )
    s.add(new)
    s.flush()
    rows = s.scalars(
        select(Measurement).where(
            Measurement.device_id == device.id,
            Measurement.revision == old.revision,
            Measurement.run_id == run_id(old.sha256),
        )
    )
    for m in list(rows):
        if m.extra.get("import", {}).get("id") != old.id:
            continue  # the same file imported for another configuration
        copy = Measurement(**{c: getattr(m, c) for c in _MEASURED})
        copy.revision = device.revision
        copy.extra = {**m.extra, "import": {**m.extra["import"], "id": new.id}}
        s.add(copy)
    s.flush()


_COPIED = (
    *("file_name", "sha256", "format", "space", "resolution", "width", "classes"),
    *("options", "entries", "mapped", "unfilled", "unmapped", "imported_at"),
)
_MEASURED = [
    c.key
    for c in Measurement.__table__.columns
    if c.key not in ("id", "revision", "extra", "created_at")
]
