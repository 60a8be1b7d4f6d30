"""proxyless-yaml and ofa-yaml: the reference mobile table's 72 keys (written here from
the format's description, with made-up numbers) map onto proxyless-mobile@224 whole."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from profiler.lutformats import (
    MAX_BYTES,
    Entry,
    create_format,
    entries_for,
    map_entries,
    parse_bytes,
    sniff,
)
from profiler.ops import OpSpec
from searchers.latency import LatencyTable
from searchers.spaces import create_space

STAGES = [  # (input HxWxC, output HxWxC, stride, idskip) of ProxylessNAS's block rows
    ("112x112x16", "56x56x24", 2, 0),
    ("56x56x24", "56x56x24", 1, 1),
    ("56x56x24", "28x28x40", 2, 0),
    ("28x28x40", "28x28x40", 1, 1),
    ("28x28x40", "14x14x80", 2, 0),
    ("14x14x80", "14x14x80", 1, 1),
    ("14x14x80", "14x14x96", 1, 0),
    ("14x14x96", "14x14x96", 1, 1),
    ("14x14x96", "7x7x192", 2, 0),
    ("7x7x192", "7x7x192", 1, 1),
    ("7x7x192", "7x7x320", 1, 0),
]
FIRST = "expanded_conv-input:112x112x32-output:112x112x16-expand:1-kernel:{k}-stride:1-idskip:0"
CONV = "Conv-input:224x224x3-output:112x112x32"
HEAD = ("Conv_1-input:7x7x320-output:7x7x1280", "Logits-input:7x7x1280-output:1000")


def reference_keys() -> list[str]:
    """The 72 keys of `mobile_trim.yaml`, as the supernet code asks for them."""
    keys = [CONV, *(FIRST.format(k=k) for k in (3, 5, 7))]
    for inp, out, s, idskip in STAGES:
        keys += [
            f"expanded_conv-input:{inp}-output:{out}-expand:{e}-kernel:{k}-stride:{s}"
            f"-idskip:{idskip}"
            for e in (3, 6)
            for k in (3, 5, 7)
        ]
    return [*keys, *HEAD]


def reference_yaml(seed: int = 0) -> tuple[str, dict[str, float]]:
    rng = random.Random(seed)
    lines, means = [], {}
    for key in reference_keys():
        mean = round(rng.uniform(0.5, 12.0), 4)
        means[key] = mean
        var = round((0.03 * mean) ** 2 * rng.uniform(0.5, 2), 6)
        lines += [f"{key}:", f"  count: {rng.randint(50, 200)}", f"  mean: {mean}", f"  var: {var}"]
    return "\n".join(lines) + "\n", means


@pytest.fixture
def space():  # type: ignore[no-untyped-def]
    return create_space("proxyless-mobile", resolution=224, width=1.0, classes=1000)


def test_parse_reads_mean_spread_and_count() -> None:
    text, means = reference_yaml()
    entries = create_format("proxyless-yaml").parse(text)
    assert len(entries) == 72 and {k: e.ms for k, e in entries.items()} == means
    e = entries[CONV]
    assert e.count is not None and 50 <= e.count <= 200
    assert e.std_ms is not None and 0 < e.std_ms < e.ms
    assert sniff(text).name == "proxyless-yaml"  # type: ignore[union-attr]


def test_reference_table_fills_every_cell(space, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fmt = create_format("proxyless-yaml")
    text, means = reference_yaml()
    entries = fmt.parse(text)
    mapped = map_entries(fmt, entries, space.slots())
    assert mapped.unfilled == []
    assert sorted(k for k, _ in mapped.unmapped) == [FIRST.format(k=5), FIRST.format(k=7)]
    assert all("no op of this space" in why for _, why in mapped.unmapped)
    assert fmt.infer(entries) == {"resolution": 224, "classes": 1000}

    path = tmp_path / "mobile_trim.yaml"
    path.write_text(text)
    table = LatencyTable.from_file(path, space)
    table.check()
    assert LatencyTable.from_file(path).space.params() == space.params()  # inferred
    fixed = means[CONV] + means[FIRST.format(k=3)] + sum(means[k] for k in HEAD)
    assert math.isclose(table.fixed_ms, fixed)
    for seed in range(5):
        arch = space.random_arch(seed)
        blocks = [op for op in space.arch_ops(arch)[2:-1] if op.kind == "mbconv"]
        total = fixed + sum(means[_block_key(op)] for op in blocks)
        assert math.isclose(table.exact(arch), total)  # zero layers add 0


def _block_key(op: OpSpec) -> str:
    """The reference's key of a block, written out here (not the format's recipe)."""
    p, (_, _, h, _), (_, _, oh, _) = op.p, op.shape, op.out_shape
    return (
        f"expanded_conv-input:{h}x{h}x{p['cin']}-output:{oh}x{oh}x{p['cout']}-expand:{p['e']}"
        f"-kernel:{p['k']}-stride:{p['s']}-idskip:{p['res']}"
    )


def test_round_trips(space) -> None:  # type: ignore[no-untyped-def]
    fmt = create_format("proxyless-yaml")
    entries = fmt.parse(reference_yaml()[0])
    assert fmt.parse(fmt.render(entries, "a comment\nof two lines")) == entries
    mapped = map_entries(fmt, entries, space.slots())
    out, notes = entries_for(fmt, space.slots(), mapped.cells)
    unmapped = {k for k, _ in mapped.unmapped}
    assert out == {k: e for k, e in entries.items() if k not in unmapped}
    assert notes == []
    assert fmt.parse(fmt.render(out)) == out


def test_export_of_measured_cells_puts_the_head_on_conv_1(space) -> None:  # type: ignore[no-untyped-def]
    fmt = create_format("proxyless-yaml")
    entries = fmt.parse(reference_yaml()[0])
    cells = map_entries(fmt, entries, space.slots()).cells
    for cell in cells.values():
        cell.parts = {}  # as hwlat measured them, not imported
    out, notes = entries_for(fmt, space.slots(), cells)
    assert out[HEAD[1]] == Entry(0.0) and len(notes) == 1 and "Conv_1" in notes[0]
    assert math.isclose(out[HEAD[0]].ms, entries[HEAD[0]].ms + entries[HEAD[1]].ms)


OFA = {  # hand-written OFA keys (expand = middle channels, -se/-hs) -> proxyless-mobile slot
    "expanded_conv-input:56x56x24-output:56x56x24-expand:72-kernel:3-stride:1-idskip:1"
    "-se:0-hs:0": "stage1.block2/3x3_MBConv3",
    "expanded_conv-input:112x112x16-output:56x56x24-expand:96-kernel:7-stride:2-idskip:0"
    "-se:0-hs:0": "stage1.block1/7x7_MBConv6",
    "Conv-input:224x224x3-output:112x112x32": "fixed[0]",
}


def test_ofa_keys_map_and_the_rest_is_explained(space) -> None:  # type: ignore[no-untyped-def]
    fmt = create_format("ofa-yaml")
    extra = {
        "Conv_2-input:1x1x1152-output:1x1x1536": "layer type 'Conv_2' has no hwlat op",
        "expanded_conv-input:56x56x24-output:56x56x24-expand:72-kernel:3-stride:1-idskip:1"
        "-se:1-hs:1": "no op of this space",
    }
    text = "".join(f"{k}:\n  mean: {i + 1}.5\n" for i, k in enumerate([*OFA, *extra]))
    assert sniff(text).name == "ofa-yaml"  # type: ignore[union-attr]
    entries = fmt.parse(text)
    mapped = map_entries(fmt, entries, space.slots())
    by_slot = {s.where: s.op.key for s in space.slots()}
    for key, where in OFA.items():
        assert mapped.cells[by_slot[where]].parts == {key: entries[key]}
    assert [k for k, _ in mapped.unmapped] == list(extra)
    for (_, why), want in zip(mapped.unmapped, extra.values(), strict=True):
        assert why.startswith(want)
    assert fmt.parse(fmt.render(entries)) == entries


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (f"{CONV}:\n  count: 3\n  var: 0.1\n", r"expected \{count, mean, var\}"),
        (f"{CONV}:\n  mean: -1.0\n", r"mean must be a finite number >= 0"),
        (f"{CONV}:\n  mean: .nan\n", r"mean must be a finite number >= 0"),
        (f"{CONV}:\n  mean: 1.0\n  median: 1.0\n", r"unknown field 'median'"),
        ("Conv:\n  mean: 1.0\n", r"not a proxyless-yaml key"),
        (f"{CONV}: [1, 2\n", r"not YAML"),
        ("- 1\n- 2\n", r"expected a mapping"),
    ],
)
def test_malformed_files_are_one_line_errors(text: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern) as info:
        parse_bytes(text.encode(), "t.yaml", "proxyless-yaml")
    assert "\n" not in str(info.value)


def test_huge_and_binary_files_are_refused() -> None:
    garbage = b"x" * (10 << 20)
    assert len(garbage) > MAX_BYTES
    for fmt in ("proxyless-yaml", "ofa-yaml"):
        with pytest.raises(ValueError, match=r"far larger than any latency table") as info:
            parse_bytes(garbage, "big.yaml", fmt)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"^big.yaml: 10.0 MB is far larger"):
        parse_bytes(garbage, "big.yaml")  # the size first, before telling the format
    with pytest.raises(ValueError, match=r"^bin.yaml: not a text file"):
        parse_bytes(bytes(range(256)) * 64, "bin.yaml", "proxyless-yaml")
