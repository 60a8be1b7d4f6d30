"""A device's stamp: what its read snapshot depends on, read in one cheap query."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select
from sqlalchemy.exc import DBAPIError

from latency_service.models import Device, Measurement, Predictor

# What a snapshot depends on, in one row: (device id, revision, newest measurement id,
# newest predictor id; 0 for none). Every upload, import or retraining adds a row with a
# higher id, and a new revision changes the revision: a changed stamp means a reload.
# Both maxima are index lookups (ix_measurements_device_newest; predictors' unique key).
STAMP = select(
    Device.id,
    Device.revision,
    select(func.coalesce(func.max(Measurement.id), 0))
    .where(Measurement.device_id == Device.id)
    .scalar_subquery(),
    select(func.coalesce(func.max(Predictor.id), 0))
    .where(Predictor.device_id == Device.id)
    .scalar_subquery(),
).where(Device.name == bindparam("name"))

Stamp = tuple[int, int, int, int]


class StampReader:
    """Stamp checks on the event loop's thread, on a connection of their own in
    autocommit (each check sees every commit before it; no transaction stays open)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.conn: Connection | None = None

    def read(self, name: str) -> Stamp | None:
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    conn = self.engine.connect()
                    self.conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                row = self.conn.execute(STAMP, {"name": name}).first()
                return None if row is None else (row[0], row[1], row[2], row[3])
            except DBAPIError:  # a dropped connection (server restart): one new one
                self.close(broken=True)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self, broken: bool = False) -> None:
        if self.conn is not None:
            if broken:  # not back into the pool
                self.conn.invalidate()
            self.conn.close()
            self.conn = None


def chain(source: asyncio.Future[Any], target: asyncio.Future[Any]) -> None:
    def copy(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            target.cancel()
        elif (e := done.exception()) is not None:
            target.set_exception(e)
        else:
            target.set_result(done.result())

    source.add_done_callback(copy)
