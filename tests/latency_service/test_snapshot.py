"""Snapshots: `newer` merges the rows added since into a new object (the old one stays
as it was, for reads holding it) and equals a whole load; anything more than new
measurements (a new revision) loads whole."""

from __future__ import annotations

from sqlalchemy import update

from latency_service.models import Device, NetworkMeasurement
from latency_service.snapshot import newer, whole
from latency_service.stamp import STAMP
from tests.latency_service.support import FBNET32, Api
from tests.latency_service.test_cache import copy_newer


def stamp_of(api: Api, name: str) -> tuple[int, ...]:
    with api.app.state.sessions() as s:
        return tuple(s.execute(STAMP, {"name": name}).one())


def load(api: Api, old: object = None):  # type: ignore[no-untyped-def]
    with api.app.state.sessions() as s:
        device = s.get(Device, stamp_of(api, "dev1")[0])
        assert device is not None
        stamp = stamp_of(api, "dev1")
        return newer(s, old, device, stamp) if old is not None else whole(s, "dev1", device, stamp)


def test_newer_equals_a_whole_load_and_leaves_the_old_one(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    api.measure(token, 5, median=1.0)
    old = load(api)
    before = {k: dict(v) for k, v in old.latency.items()}
    body = old.encoded(next(iter(old.latency)))
    copy_newer(api, 7.0)  # a newer row of the first op
    merged = load(api, old)
    assert merged is not None and merged is not old
    assert merged.latency == load(api).latency  # the same as loading it whole
    assert sorted(v["median_ms"] for v in merged.latency.values()) == [1.0] * 4 + [7.0]
    assert old.latency == before and old.encoded(next(iter(old.latency))) == body
    assert merged.watermark[0] > old.watermark[0]


def test_a_new_revision_is_not_merged(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    api.measure(token, 2)
    old = load(api)
    with api.app.state.sessions() as s:
        s.execute(update(Device).where(Device.name == "dev1").values(revision=2))
        s.commit()
    assert load(api, old) is None


def test_a_network_measurement_changes_the_stamp_and_drops_calibrations(
    api: Api, token: str
) -> None:
    """Another worker's network upload must reach this worker's estimates: the stamp has
    the newest network measurement, and the merged snapshot fits its calibrations again."""
    api.enqueue("dev1", **FBNET32)
    api.measure(token, 2)
    old = load(api)
    old.calibration[None] = "fitted on the old data"
    before = stamp_of(api, "dev1")
    with api.app.state.sessions() as s:
        s.add(
            NetworkMeasurement(
                device_id=before[0], revision=1, space="fbnet", resolution=32, width=1.0,
                arch={}, arch_hash="h", run_id="r", median_ms=1.0, ci_half_width_ms=0.01,
                stable=True, stats={},
            )
        )  # fmt: skip
        s.commit()
    assert stamp_of(api, "dev1") != before
    merged = load(api, old)
    assert merged is not None and merged.calibration == {}
    assert merged.latency == old.latency
