"""A device's stamp: what its read snapshot depends on, read in one cheap query."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select
from sqlalchemy.exc import DBAPIError

from latency_service.models import Device, Measurement, NetworkMeasurement, Predictor

# What a snapshot depends on, in one row: (device id, revision, newest measurement id,
# newest predictor id, number of predictors, newest network measurement id; 0 for none).
# Every upload, import or retraining adds a row, and a new revision changes the revision:
# a changed stamp means a reload. Measurement ids follow commit order per device (writers
# lock the device's row first); predictors are trained without that lock, so two trainings
# may commit out of id order: their count catches the late one. The measurement maximum is
# an index probe (ix_measurements_device_newest); a device has few predictors and network
# measurements.
STAMP = select(
    Device.id,
    Device.revision,
    select(func.coalesce(func.max(Measurement.id), 0))
    .where(Measurement.device_id == Device.id)
    .scalar_subquery(),
    select(func.coalesce(func.max(Predictor.id), 0))
    .where(Predictor.device_id == Device.id)
    .scalar_subquery(),
    select(func.count(Predictor.id)).where(Predictor.device_id == Device.id).scalar_subquery(),
    select(func.coalesce(func.max(NetworkMeasurement.id), 0))
    .where(NetworkMeasurement.device_id == Device.id)
    .scalar_subquery(),
).where(Device.name == bindparam("name"))

Stamp = tuple[int, ...]

# a stamp check waits at most this long for the database (it runs on the event loop)
STAMP_TIMEOUT_MS = 5000


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
                    self.conn = self._connect()
                row = self.conn.execute(STAMP, {"name": name}).first()
                return None if row is None else tuple(row)
            except DBAPIError:  # a dropped connection (server restart): one new one
                self.close(broken=True)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _connect(self) -> Connection:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        if conn.dialect.name == "postgresql":  # a stuck server must not stop the loop
            conn.exec_driver_sql(f"SET statement_timeout = {STAMP_TIMEOUT_MS}")
        return conn

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
