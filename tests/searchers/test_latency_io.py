"""Foreign tables through `LatencyTable.from_file`: the space read from the file, every
cell of the ProxylessNAS mobile table filled, holes named with the reason, the file's
resolution checked, and a deployment table standing in for a space trained smaller."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from profiler.lutformats import create_format
from searchers.latency import LatencyTable
from searchers.spaces import create_space
from tests.lut_fixtures import proxyless_mobile_entries, proxyless_mobile_yaml


@pytest.fixture(scope="module")
def yaml_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lut") / "mobile_trim.yaml"
    path.write_text(proxyless_mobile_yaml())
    return path


def test_the_reference_mobile_table_fills_every_cell(yaml_path: Path) -> None:
    table = LatencyTable.from_file(yaml_path)  # space, resolution and classes from the file
    assert table.space.params() == {
        "space": "proxyless-mobile", "resolution": 224, "width": 1.0, "classes": 1000,
    }  # fmt: skip
    table.check()
    assert table.cells("missing") == [] and table.meta["unfilled"] == []
    assert table.meta["entries"] == 72 and table.meta["unmapped_count"] == 2
    assert all("kernel:5" in u or "kernel:7" in u for u in table.meta["unmapped"])
    assert table.meta["format"] == "proxyless-yaml" and len(table.meta["sha256"]) == 64


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_architecture_costs_the_plain_sum_of_its_blocks_means(
    yaml_path: Path, seed: int
) -> None:
    space, entries = proxyless_mobile_entries()
    table = LatencyTable.from_file(yaml_path)
    fmt = create_format("proxyless-yaml")
    arch = space.random_arch(seed)
    ops = space.arch_ops(arch)  # stem, first block, the 21 choices, head
    keys = [k for op in ops for k in fmt.recipe(_slot(op, space)).keys]
    zeros = sum(1 for name in arch if name == "zero")
    assert len(keys) == 2 + (21 - zeros) + 2  # Conv, first block, the blocks, Conv_1 + Logits
    assert table.exact(arch) == pytest.approx(math.fsum(entries[k].ms for k in keys), abs=1e-9)


def _slot(op, space):  # type: ignore[no-untyped-def]
    from profiler.lutformats import Slot

    return Slot("arch", op, fixed=0 if op == space.fixed_ops()[0] else None)


def test_holes_are_named_with_the_reason(yaml_path: Path, tmp_path: Path) -> None:
    _, entries = proxyless_mobile_entries()
    gone = "expanded_conv-input:28x28x40-output:14x14x80-expand:6-kernel:7-stride:2-idskip:0"
    del entries[gone]
    path = tmp_path / "holes.yaml"
    path.write_text(create_format("proxyless-yaml").render(entries))
    table = LatencyTable.from_file(path)
    with pytest.raises(ValueError, match=r"1 ops of proxyless-mobile have no latency in this "
                       r"proxyless-yaml file: stage3.block1/7x7_MBConv6: not in the file: "
                       + gone):  # fmt: skip
        table.check()


def test_the_files_resolution_and_classes_are_checked(yaml_path: Path) -> None:
    small = create_space("proxyless-mobile", resolution=32, classes=1000)
    with pytest.raises(
        ValueError,
        match=r"resolution 224, the space has 32: in `hwlat search`, pass "
        r"--table-resolution 224 .*; elsewhere -r 224",
    ):
        LatencyTable.from_file(yaml_path, small)
    ten = create_space("proxyless-mobile", resolution=224, classes=10)
    with pytest.raises(
        ValueError,
        match=r"classes 1000, the space has 10: in `hwlat search`, pass "
        r"--table-classes 1000 .*; elsewhere --classes 1000",
    ):
        LatencyTable.from_file(yaml_path, ten)


def test_a_format_without_a_space_asks_for_one(tmp_path: Path) -> None:
    path = tmp_path / "224_lookup_table.yaml"
    key = (
        "expanded_conv-input:56x56x24-output:56x56x24-expand:72-kernel:3-stride:1-idskip:1"
        "-se:0-hs:0"
    )
    path.write_text(f'"{key}":\n  mean: 1.5\n  count: 10\n  var: 0.01\n')
    with pytest.raises(
        ValueError, match="a ofa-yaml table does not name its space; pass the space"
    ):
        LatencyTable.from_file(path)


def test_a_deployment_table_stands_in_for_the_space_searched(yaml_path: Path) -> None:
    table = LatencyTable.from_file(yaml_path)
    searched = create_space("proxyless-mobile", resolution=32, classes=10)
    moved = table.retarget(searched)
    assert moved.space is searched and torch.equal(moved.table, table.table)
    assert moved.fixed_ms == table.fixed_ms and moved.meta["deployment"]["resolution"] == 224
    arch = searched.random_arch(3)
    assert moved.exact(arch) == table.exact(arch)
    narrow = create_space("proxyless-mobile", resolution=32, width=0.5, classes=10)
    for other in (create_space("fbnet", resolution=32, classes=10), narrow):
        with pytest.raises(
            ValueError, match="does not have the width, layers and legal candidates"
        ):
            table.retarget(other)
