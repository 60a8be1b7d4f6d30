"""nni-lut: NNI's FBNet lut.txt (one dict literal per line, µs), written here from the
format's description and mapped onto hwlat's fbnet space."""

from __future__ import annotations

import ast
import math
import random
from pathlib import Path

import pytest

from profiler.lutformats import (
    Cell,
    create_format,
    entries_for,
    map_entries,
    parse_bytes,
    sniff,
)
from profiler.lutformats.nni import FIELDS, FIXED_NOTE
from searchers.latency import LatencyTable
from searchers.spaces import SearchSpace, create_space

FMT = create_format("nni-lut")


@pytest.fixture(scope="module")
def fbnet() -> SearchSpace:
    return create_space("fbnet", resolution=224, width=1.0, classes=1000)


def nni_name(block: str, res: int) -> str:
    """NNI's op name of an FBNet block, written out here from PFLD's naming grammar."""
    if block == "skip":
        return "skip"
    _, k, e, *g = block.split("_")  # ir_k3_e1[_g2]
    return (
        f"mb_{k}"
        + (f"_{e}" if e != "e1" else "")
        + ("_res" if res else "")
        + "".join(f"_{x}" for x in g)
    )


def fbnet_lut(space: SearchSpace, seed: int = 0) -> tuple[str, dict[str, float]]:
    """A lut.txt with one row per (op, shape) of the space's searchable layers, in µs."""
    rng = random.Random(seed)
    rows: dict[str, float] = {}
    lines = []
    for layer in space.layers():
        for c in layer.legal:
            assert c.op is not None
            p, (_, _, h, w) = c.op.p, c.op.shape
            res = int(p.get("res", 1))
            shape = (w, h, p["cin"], p["cout"], p["s"])
            key = f"{nni_name(c.name, res)}|{'x'.join(map(str, shape))}|float"
            if key not in rows:
                rows[key] = round(rng.uniform(50, 5000), 1)
                rec = {
                    "op_name": nni_name(c.name, res),
                    "op_data_shape": shape,
                    "op_dtype": "float",
                    "op_latency": rows[key],
                }
                lines.append(repr(rec))
    return "\n".join(lines) + "\n", rows


EXTRA = {  # rows of a real NNI table that no op of fbnet uses, and why
    "{'op_name': 'gh_k3', 'op_data_shape': (14, 14, 32, 32, 1), 'op_dtype': 'float', "
    "'op_latency': 80.0}": "NNI op 'gh_k3' (GhostModule) has no hwlat op kind",
    "{'op_name': 'mb_k3_res_d2', 'op_data_shape': (14, 14, 32, 32, 1), 'op_dtype': 'float', "
    "'op_latency': 80.0}": "NNI op 'mb_k3_res_d2' (dilated MBConv) has no hwlat op kind",
    "{'op_name': 'mb_k3_res', 'op_data_shape': (56, 56, 24, 24, 1), 'op_dtype': 'int8', "
    "'op_latency': 80.0}": "dtype 'int8': only 'float' rows are NNI's latencies",
    "{'op_name': 'mb_k3_res', 'op_data_shape': (13, 13, 24, 24, 1), 'op_dtype': 'float', "
    "'op_latency': 80.0}": "no op of this space has this name and shape",
}


def test_parse_reads_microseconds_and_skips_blank_lines() -> None:
    text = (
        "\n{'op_name': 'mb_k3_e6_res', 'op_data_shape': (56, 56, 24, 24, 1), "
        "'op_dtype': 'float', 'op_latency': 1234.5}\n\n"
        '{"op_name": "skip", "op_data_shape": (56, 56, 24, 24, 1), "op_dtype": "float", '
        '"op_latency": 3}\n'
    )
    entries = FMT.parse(text)
    assert list(entries) == ["mb_k3_e6_res|56x56x24x24x1|float", "skip|56x56x24x24x1|float"]
    assert entries["mb_k3_e6_res|56x56x24x24x1|float"].ms == pytest.approx(1.2345)
    assert entries["skip|56x56x24x24x1|float"].ms == pytest.approx(0.003)
    assert sniff(text) is not None and sniff(text).name == "nni-lut"  # type: ignore[union-attr]
    assert FMT.unit_ms == 1e-3  # type: ignore[attr-defined]


def test_a_hand_written_row_lands_on_its_cell(fbnet: SearchSpace) -> None:
    line = (
        "{'op_name': 'mb_k3_e6_res', 'op_data_shape': (56, 56, 24, 24, 1), "
        "'op_dtype': 'float', 'op_latency': 1234.5}"
    )
    mapped = map_entries(FMT, FMT.parse(line), fbnet.slots())
    op = fbnet.layers()[2].op("ir_k3_e6")  # tbs3: 24 -> 24 at 56x56, stride 1
    assert mapped.cells[op.key].ms == pytest.approx(1.2345)
    assert mapped.unmapped == []


def test_full_table_fills_every_cell_and_explains_the_rest(
    fbnet: SearchSpace, tmp_path: Path
) -> None:
    text, rows = fbnet_lut(fbnet)
    text += "\n".join(EXTRA) + "\n"
    entries = FMT.parse(text)
    mapped = map_entries(FMT, entries, fbnet.slots())
    assert mapped.unfilled == []
    assert [why for _, why in mapped.unmapped] == list(EXTRA.values())
    for where in ("fixed[0]", "fixed[1]"):  # stem and head: no rows, 0 by NNI's convention
        op = next(s.op for s in fbnet.slots() if s.where == where)
        assert mapped.cells[op.key] == Cell(0.0, None, None, {}, FIXED_NOTE)
    path = tmp_path / "lut.txt"
    path.write_text(text)
    table = LatencyTable.from_file(path, fbnet)
    table.check()
    assert table.fixed_ms == 0.0
    arch = fbnet.random_arch(1)
    want = 0.0
    for layer, name in zip(fbnet.layers(), arch, strict=True):
        op = layer.op(name)
        _, _, h, w = op.shape
        res = int(op.p.get("res", 1))
        shape = f"{w}x{h}x{op.p['cin']}x{op.p['cout']}x{op.p['s']}"
        want += rows[f"{nni_name(name, res)}|{shape}|float"] * 1e-3
    assert math.isclose(table.exact(arch), want)


def test_render_is_what_nni_reads() -> None:
    text, _ = fbnet_lut(create_space("fbnet", resolution=32))
    rendered = FMT.render(FMT.parse(text), "a comment NNI could not read")
    assert "#" not in rendered
    for line in rendered.splitlines():
        rec = ast.literal_eval(line)
        assert tuple(rec) == FIELDS
        assert isinstance(rec["op_data_shape"], tuple) and rec["op_dtype"] == "float"
    assert rendered == text  # the file's own numbers, unchanged


def test_round_trips(fbnet: SearchSpace) -> None:
    text, _ = fbnet_lut(fbnet)
    entries = FMT.parse(text)
    assert FMT.parse(FMT.render(entries)) == entries
    # hwlat's own measurements (fixed ops included) exported, then imported back
    cells = map_entries(FMT, entries, fbnet.slots()).cells
    measured = {k: Cell(c.ms + 0.5, None, None) for k, c in cells.items()}
    out, _ = entries_for(FMT, fbnet.slots(), measured)
    assert {k.split("_")[0] for k in out if k.startswith("fixed_")} == {"fixed"}
    back = map_entries(FMT, FMT.parse(FMT.render(out)), fbnet.slots())
    assert back.unmapped == [] and back.unfilled == []
    for key, cell in measured.items():
        assert back.cells[key].ms == pytest.approx(cell.ms)
    # a file with hwlat's fixed rows: import -> export gives the same entries
    again = FMT.parse(FMT.render(out))
    exported, _ = entries_for(FMT, fbnet.slots(), back.cells)
    assert exported == again


def test_import_export_of_a_plain_nni_file_adds_no_rows(fbnet: SearchSpace) -> None:
    entries = FMT.parse(fbnet_lut(fbnet)[0])
    mapped = map_entries(FMT, entries, fbnet.slots())
    out, _ = entries_for(FMT, fbnet.slots(), mapped.cells)
    assert out == entries


def test_ops_nni_cannot_express_are_unfilled_with_a_reason() -> None:
    space = create_space("spos-shufflenet", resolution=32)
    mapped = map_entries(FMT, {}, space.slots())
    assert mapped.unfilled and all(why.startswith("NNI has no") for _, why in mapped.unfilled)


ROW = "{'op_name': 'skip', 'op_data_shape': (8, 8, 4, 4, 1), 'op_dtype': 'float', "


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (ROW + "'op_latency': 1}\nnot a dict\n", r"line 2: not a Python dict literal"),
        ("{'op_name': 'skip', 'op_dtype': 'float', 'op_latency': 1}", r"missing 'op_data_shape'"),
        (ROW + "}", r"line 1: missing 'op_latency'"),
        (ROW + "'op_latency': -1}", r"op_latency must be a finite number >= 0"),
        (ROW + "'op_latency': 1e999}", r"op_latency must be a finite number >= 0"),
        (ROW + "'op_latency': '12'}", r"op_latency must be a number"),
        (ROW + "'op_latency': 1, 'unit': 'us'}", r"unknown field 'unit'"),
        (ROW.replace("(8, 8, 4, 4, 1)", "[8, 8, 4, 4, 1]") + "'op_latency': 1}", r"a tuple of 5"),
        (ROW.replace("(8, 8, 4, 4, 1)", "(8, 8, 4, 4)") + "'op_latency': 1}", r"a tuple of 5"),
        (ROW + "'op_latency': 1}\n" + ROW + "'op_latency': 2}", r"line 2: .* repeats line 1"),
        ("__import__('os').system('true')", r"line 1: not a Python dict literal"),
        ("[1, 2]", r"line 1: expected a dict, got list"),
        ("\n\n", r"no records"),
    ],
)
def test_malformed_files_are_one_line_errors(text: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern) as info:
        parse_bytes(text.encode(), "lut.txt", "nni-lut")
    assert "\n" not in str(info.value)


def test_huge_and_binary_files_are_refused() -> None:
    with pytest.raises(ValueError, match=r"far larger than any latency table") as info:
        parse_bytes(b"{'op_name': " * (1 << 20), "lut.txt", "nni-lut")
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"^lut.txt: not a text file"):
        parse_bytes(bytes(range(256)) * 64, "lut.txt", "nni-lut")
