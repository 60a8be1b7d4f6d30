"""Ops: validated OpSpecs stored once by canonical key, with their analytic features."""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Sequence
from functools import lru_cache
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from latency_service.errors import Invalid
from latency_service.models import Device, Op, WorkItem
from profiler._kinds import KINDS
from profiler.features import features
from profiler.ops import OpSpec
from searchers.spaces import SearchSpace, create_space

T = TypeVar("T")


def check_kind(kind: str) -> None:
    """Invalid (a 422) unless `kind` is an op kind this version knows."""
    if kind not in KINDS:
        raise Invalid(f"kind: unknown op kind {kind!r} (known: {', '.join(KINDS)})")


ACTIVE = ("pending", "leased")  # work item states that still lead to a measurement
CHUNK = 500  # values per IN (...) query: far below SQLite's and PostgreSQL's bind limits


def chunks(values: Sequence[T]) -> Iterator[list[T]]:
    """`values` in runs of CHUNK, one IN (...) query each."""
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def active_op_ids(s: Session, device: Device, op_ids: Sequence[int]) -> set[int]:
    """The ops among `op_ids` that already have an active (pending or leased) work item
    for the device."""
    found: set[int] = set()
    for chunk in chunks(op_ids):
        found.update(
            s.scalars(
                select(WorkItem.op_id).where(
                    WorkItem.device_id == device.id,
                    WorkItem.state.in_(ACTIVE),
                    WorkItem.op_id.in_(chunk),
                )
            )
        )
    return found


def parse_keys(keys: Iterable[str], field: str = "ops", skip: Container[str] = ()) -> list[OpSpec]:
    """Parse op keys (except those in `skip`, known to be valid); the first malformed one
    is an Invalid error naming its position, e.g. `keys[3]: shape: ...`."""
    specs = []
    for i, key in enumerate(keys):
        if key in skip:
            continue
        try:
            specs.append(OpSpec.from_key(key))
        except ValueError as exc:
            raise Invalid(f"{field}[{i}]: {exc}") from None
    return specs


@lru_cache(maxsize=64)
def make_space(
    name: str,
    resolution: int | None,
    width: float,
    classes: int | None,
    options: tuple[tuple[str, int], ...] = (),
) -> SearchSpace:
    try:
        return create_space(
            name, resolution=resolution, width=width, classes=classes, **dict(options)
        )
    except TypeError:
        raise Invalid(f"options: {name} takes no such option ({dict(options)})") from None
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def space_ops(
    name: str,
    resolution: int | None,
    width: float,
    classes: int | None,
    options: tuple[tuple[str, int], ...] = (),
) -> list[OpSpec]:
    """Every op a LUT of the space needs: fixed ops and all legal candidates, once."""
    space = make_space(name, resolution, width, classes, options)
    return list(dict.fromkeys(space.fixed_ops() + space.distinct_ops()))


def ensure_ops(s: Session, specs: Iterable[OpSpec]) -> dict[str, Op]:
    """The Op rows of these specs, inserting the missing ones (in this transaction)."""
    wanted = {spec.key: spec for spec in specs}
    rows: dict[str, Op] = {}
    keys = list(wanted)
    for start in range(0, len(keys), 500):  # stay under SQL parameter limits
        chunk = keys[start : start + 500]
        rows.update({op.key: op for op in s.scalars(select(Op).where(Op.key.in_(chunk)))})
    for key, spec in wanted.items():
        if key not in rows:
            rows[key] = Op(
                key=key, kind=spec.kind, spec=spec.to_dict(), features=features(spec).to_dict()
            )
            s.add(rows[key])
    s.flush()
    return rows
