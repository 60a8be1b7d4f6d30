"""singlepath-json: Single-Path NAS's runtime model (22 blocks x 4 ops, ms) with hwlat's
`overhead_ms`, written here from the format's description, on singlepath-mobile."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path
from typing import Any

import pytest

from profiler.lutformats import create_format, entries_for, map_entries, parse_bytes, sniff
from profiler.lutformats.singlepath import NO_OVERHEAD, OTHER_SPACE, SKIP_NOTE
from searchers.latency import LatencyTable
from searchers.spaces import SearchSpace, create_space

FMT = create_format("singlepath-json")
OP_INDEX = {"3x3_MBConv3": "0", "3x3_MBConv6": "1", "5x5_MBConv3": "2", "5x5_MBConv6": "3"}


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return create_space("singlepath-mobile")


def runtime_model(
    seed: int = 0, overhead: float | None = 19.5999, same: bool = True
) -> dict[str, Any]:
    """Blocks "0".."21" x ops "0".."3" in ms; with `same`, the layers of a stage that have
    the same op (2..4 of each stage) have the same numbers, as hwlat keeps one per op."""
    rng = random.Random(seed)
    data: dict[str, Any] = {}
    for block in range(22):
        repeat = same and block % 4 in (2, 3, 0) and 1 < block < 21
        if repeat:
            data[str(block)] = dict(data[str(block - 1)])
        else:
            data[str(block)] = {str(op): round(rng.uniform(0.5, 12.0), 4) for op in range(4)}
    if overhead is not None:
        data["overhead_ms"] = overhead
    return data


def test_parse_keys_and_sniff() -> None:
    text = json.dumps(runtime_model())
    entries = FMT.parse(text)
    assert len(entries) == 22 * 4 + 1
    assert entries["5/2"].ms == runtime_model()["5"]["2"]
    assert entries["overhead_ms"].ms == 19.5999
    assert sniff(text) is not None and sniff(text).name == "singlepath-json"  # type: ignore[union-attr]
    assert not FMT.sniff('{"format": "hwlat-lut/1", "ops": {}}')
    assert not FMT.sniff("{'op_name': 'skip', 'op_data_shape': (1, 1, 1, 1, 1)}")


def test_every_cell_filled_and_blocks_0_and_21_unmapped(space: SearchSpace, tmp_path: Path) -> None:
    data = runtime_model()
    entries = FMT.parse(json.dumps(data))
    mapped = map_entries(FMT, entries, space.slots())
    assert mapped.unfilled == []
    assert sorted(k for k, _ in mapped.unmapped) == [f"{b}/{o}" for b in (0, 21) for o in "0123"]
    assert all("fixed block" in why for _, why in mapped.unmapped)
    skip = space.layers()[1].op("skip")
    assert mapped.cells[skip.key].ms == 0.0 and mapped.cells[skip.key].note == SKIP_NOTE

    path = tmp_path / "pixel1_runtime_model.json"
    path.write_text(json.dumps(data))
    table = LatencyTable.from_file(path)  # the format names its space
    assert table.space.name == "singlepath-mobile"
    table.check()
    assert table.fixed_ms == 19.5999
    for seed in range(5):
        arch = space.random_arch(seed)
        want = 19.5999 + sum(
            data[str(row + 1)][OP_INDEX[name]] for row, name in enumerate(arch) if name != "skip"
        )
        assert math.isclose(table.exact(arch), want)


def test_without_overhead_the_stem_is_unfilled(space: SearchSpace, tmp_path: Path) -> None:
    data = runtime_model(overhead=None)
    mapped = map_entries(FMT, FMT.parse(json.dumps(data)), space.slots())
    assert mapped.unfilled == [("fixed[0]", f"not in the file: overhead_ms; {NO_OVERHEAD}")]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"fixed\[0\]: not in the file: overhead_ms"):
        LatencyTable.from_file(path).check()
    assert "19.5999" in NO_OVERHEAD


def test_round_trips(space: SearchSpace) -> None:
    entries = FMT.parse(json.dumps(runtime_model()))
    text = FMT.render(entries, "dropped: JSON has no comments")
    assert FMT.parse(text) == entries and text.count("\n") == 1
    mapped = map_entries(FMT, entries, space.slots())
    out, notes = entries_for(FMT, space.slots(), mapped.cells)
    unmapped = {k for k, _ in mapped.unmapped}
    assert out == {k: e for k, e in entries.items() if k not in unmapped} and notes == []
    assert FMT.parse(FMT.render(out)) == out


def test_layers_with_the_same_op_keep_their_mean_and_their_own_numbers(
    space: SearchSpace,
) -> None:
    """hwlat keeps one latency per op: rows 2..4 of a stage (the same op) give their mean,
    with the spread between them as its error, and each row's own number is kept for
    the export, so the file comes back as it was."""
    data = runtime_model(same=False)
    entries = FMT.parse(json.dumps(data))
    mapped = map_entries(FMT, entries, space.slots())
    op = space.layers()[2].op("3x3_MBConv3")  # rows 2, 3 and 4 hold this op
    rows = [data[str(b)]["0"] for b in (2, 3, 4)]
    cell = mapped.cells[op.key]
    assert cell.ms == pytest.approx(sum(rows) / 3) and cell.count is None
    assert cell.std_ms == pytest.approx(statistics.stdev(rows))
    assert "the mean of 3 layers' entries" in cell.note
    out, _ = entries_for(FMT, space.slots(), mapped.cells)
    assert [out[f"{b}/0"].ms for b in (2, 3, 4)] == rows


def test_other_spaces_are_refused_by_note() -> None:
    proxyless = create_space("proxyless-mobile")
    mapped = map_entries(FMT, FMT.parse(json.dumps(runtime_model())), proxyless.slots())
    refused = {where for where, why in mapped.unfilled if why == OTHER_SPACE}
    assert "fixed[2]" in refused and "stage6.block1/3x3_MBConv3" in refused
    assert "stage1.block1/7x7_MBConv6" in refused


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"22": {}}, r"unknown key '22'"),
        ({"05": {}}, r"unknown key '05'"),
        ({"layers": {}}, r"unknown key 'layers'"),
        ({"1": {"0": 1, "1": 1, "2": 1, "3": 1, "4": 1}}, r"layer 1: unknown op '4'"),
        ({"1": {"0": 1, "1": 1, "2": 1}}, r"layer 1: missing op '3'"),
        ({"1": {"0": 1, "1": -1, "2": 1, "3": 1}}, r"layer 1 op 1: latency must be a finite"),
        ({"1": {"0": math.nan, "1": 1, "2": 1, "3": 1}}, r"latency must be a finite"),
        ({"1": {"0": "x", "1": 1, "2": 1, "3": 1}}, r"latency must be a number"),
        ({"1": [1, 2, 3, 4]}, r"layer 1: expected"),
        ({"overhead_ms": -2}, r"overhead_ms: latency must be a finite"),
        ([1, 2], r"expected an object"),
        ({}, r"expected an object"),
    ],
)
def test_malformed_files_are_one_line_errors(data: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern) as info:
        parse_bytes(json.dumps(data).encode(), "m.json", "singlepath-json")
    assert "\n" not in str(info.value)


def test_not_json_huge_and_binary_files_are_refused() -> None:
    with pytest.raises(ValueError, match=r"not JSON"):
        parse_bytes(b'{"1": {"0": 1,', "m.json", "singlepath-json")
    with pytest.raises(ValueError, match=r"far larger than any latency table") as info:
        parse_bytes(b'{"1": ' * (2 << 20), "m.json", "singlepath-json")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"^m.json: not a text file"):
        parse_bytes(bytes(range(256)) * 64, "m.json", "singlepath-json")


def test_a_measured_tables_overhead_is_all_its_fixed_ops(space: SearchSpace) -> None:
    """Exported from hwlat's own measurements, overhead_ms is what the reference code adds
    for stem, blocks 0 and 21 and head: their sum, not the stem alone."""
    from profiler.lutformats import Cell

    cells = {slot.op.key: Cell(1.0 + i, None, None) for i, slot in enumerate(space.slots())}
    out, notes = entries_for(FMT, space.slots(), cells)
    fixed = [cells[op.key].ms for op in space.fixed_ops()]
    assert len(fixed) == 4 and out["overhead_ms"].ms == pytest.approx(sum(fixed))
    assert any("the sum of the 4 fixed ops" in n for n in notes)
    del cells[space.fixed_ops()[2].key]
    out, notes = entries_for(FMT, space.slots(), cells)
    assert "overhead_ms" not in out and any("left out" in n for n in notes)
