"""import_table in one session: the revision rules (no-op, new revision, carried
configurations), the measurements it writes, and nothing written when it fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from latency_service.db import make_engine, session_factory
from latency_service.errors import Conflict, Invalid
from latency_service.models import Device, LutImport, Measurement
from latency_service.repository import imports
from latency_service.repository.latency import all_current
from latency_service.repository.ops import make_space
from profiler.lutformats import parse_bytes
from tests.latency_service.lutfiles import table_text


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        yield s
    engine.dispose()


def run(s: Session, text: str, name: str, resolution: int = 224) -> imports.ImportOutcome:
    table = parse_bytes(text.encode(), name, "ofa-yaml")
    space = make_space("proxyless-mobile", resolution, 1.0, 1000)
    out = imports.import_table(s, "phone", table, space, ())
    s.commit()
    return out


def count(s: Session, model: type) -> int:
    return s.scalar(select(func.count()).select_from(model)) or 0


def test_revisions_noops_and_carried_configurations(session: Session) -> None:
    a224, a192 = table_text("ofa-yaml", 0.5), table_text("ofa-yaml", 0.3, resolution=192)
    first = run(session, a224, "224.yaml")
    assert first.created_device and first.device.revision == 1 and first.row.mapped == 74
    assert run(session, a224, "224.yaml").noop
    assert run(session, a192, "192.yaml", 192).device.revision == 2
    third = run(session, table_text("ofa-yaml", 2.0), "224-new.yaml")
    device = third.device
    assert device.revision == 3
    now = imports.current(session, device)
    assert sorted(r.file_name for r in now) == ["192.yaml", "224-new.yaml"]
    [carried] = [r for r in now if r.file_name == "192.yaml"]
    origin = session.get(LutImport, carried.carried_from)
    assert origin is not None and origin.revision == 2 and origin.carried_from is None
    current = all_current(session, device)
    by_file: dict[str, list[float]] = {}
    for m in current.values():
        by_file.setdefault(m.extra["import"]["file"], []).append(m.median_ms)
        assert m.extra["import"]["id"] in {r.id for r in now}
    assert set(by_file) == {"192.yaml", "224-new.yaml"}
    assert min(by_file["224-new.yaml"]) == 0.0 and max(by_file["224-new.yaml"]) >= 2.0
    assert len(imports.imports(session, device)) == 5  # 1 + (1 + carried) + (1 + carried)


def test_measurements_hold_the_files_statistics_only(session: Session) -> None:
    out = run(session, table_text("ofa-yaml"), "224.yaml")
    rows = list(session.scalars(select(Measurement)))
    assert len(rows) == out.row.mapped == 74
    block = next(m for m in rows if m.extra["import"]["parts"])
    assert block.run_id == f"import:{out.row.sha256[:16]}" and block.samples == 100
    assert block.median_ms == block.mean_ms and block.std_ms == pytest.approx(0.1)
    assert (block.min_ms, block.p10_ms, block.p90_ms, block.iqr_ms) == (None,) * 4
    assert block.ci_half_width_ms == pytest.approx(0.0196) and block.stable
    assert not block.target_met and block.runtime == {"runtime": "imported", "format": "ofa-yaml"}
    free = [m for m in rows if not m.extra["import"]["parts"]]  # zero blocks: ProxylessNAS's 0
    assert free and all(m.median_ms == 0.0 and m.ci_half_width_ms is None for m in free)
    assert all("costs 0" in m.extra["import"]["note"] for m in free)


def test_nothing_is_written_when_an_import_fails(session: Session) -> None:
    with pytest.raises(Invalid, match="a table for resolution 224, not 160"):
        run(session, table_text("ofa-yaml"), "224.yaml", resolution=160)
    session.rollback()
    with pytest.raises(Invalid, match="none of its"):  # MobileNetV3's Conv_2: no hwlat op
        run(session, '"Conv_2-input:1x1x960-output:1x1x1280":\n  mean: 1.0\n', "odd.yaml")
    session.rollback()
    assert (count(session, Device), count(session, Measurement), count(session, LutImport)) == (
        0,
        0,
        0,
    )


def test_a_measured_device_is_refused(session: Session) -> None:
    session.add(Device(name="phone", runtime="ort-cpu"))
    session.commit()
    with pytest.raises(Conflict, match="another name"):
        run(session, table_text("ofa-yaml"), "224.yaml")


def test_a_files_free_zero_rows_are_not_training_labels(session: Session) -> None:
    from latency_service.repository.predictors import training_rows

    device = run(session, table_text("ofa-yaml", 0.5), "224.yaml").device
    stored = [m for k, m in all_current(session, device).items() if k.startswith("skip|")]
    assert stored and all(m.median_ms == 0.0 for m in stored)  # the zero blocks: free
    assert training_rows(session, device, "skip").specs == []
    assert len(training_rows(session, device, "mbconv").specs) > 0
