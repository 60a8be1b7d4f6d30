"""The DARTS genotype drawing: well-formed SVG, one labelled arrow per pair, a dashed
arrow from every node to the output, escaped text, and labels that never overlap."""

from __future__ import annotations

import itertools
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from searchers.spaces import ArchError, create_space
from searchers.spaces.darts import Darts, Genotype
from searchers.spaces.darts_draw import Box, cell_svg, genotype_svg, label_boxes

NS = "{http://www.w3.org/2000/svg}"
DARTS_V2 = Genotype(  # the genotype of the DARTS paper (second order)
    normal=(("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)),
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)),
)  # fmt: skip


def of_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if e.get("class") == cls]


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def input_structures() -> Iterator[list[tuple[str, int]]]:
    """Every choice of two inputs per node (1 * 3 * 6 * 10 = 180), all with the longest op."""
    per_node = [itertools.combinations(range(node + 2), 2) for node in range(4)]
    for inputs in itertools.product(*per_node):
        yield [("sep_conv_3x3", src) for pair in inputs for src in pair]


def test_genotype_svg_has_one_labelled_arrow_per_pair_and_four_dashed_per_cell() -> None:
    root = ET.fromstring(genotype_svg(DARTS_V2))
    assert root.tag == f"{NS}svg"
    cells = of_class(root, "g", "cell")
    assert len(cells) == 2
    for cell, pairs in zip(cells, DARTS_V2, strict=True):
        arrows = of_class(cell, "line", "edge")
        assert [(a.get("data-op"), int(a.get("data-input", ""))) for a in arrows] == list(pairs)
        assert [t.text for t in of_class(cell, "text", "op")] == [op for op, _ in pairs]
        dashed = of_class(cell, "line", "concat")
        assert len(dashed) == 4 and all(d.get("stroke-dasharray") for d in dashed)
        assert not any(a.get("stroke-dasharray") for a in arrows)
    assert len(of_class(root, "line", "edge")) == 16
    assert [t.text for t in of_class(root, "text", "title")] == ["normal cell", "reduction cell"]
    names = {t.text for t in root.iter(f"{NS}text")}
    assert {"c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}", "pool", "dil conv"} <= names


def test_a_json_genotype_draws_like_the_parsed_one_whatever_the_network() -> None:
    """The stored JSON of a small darts network (C, cells, resolution not the defaults)."""
    space = create_space("darts", resolution=8, C=4, cells=3)
    genotype = space.random_arch(7)
    assert genotype_svg(space.arch_to_json(genotype)) == genotype_svg(genotype)


def test_cell_svg_is_a_document_whose_labels_are_the_helpers_boxes() -> None:
    root = ET.fromstring(cell_svg(DARTS_V2.normal, "normal"))
    width, height = float(root.get("width", "")), float(root.get("height", ""))
    rects = [label.find(f"{NS}rect") for label in of_class(root, "g", "label")]
    assert len(rects) == 8 and None not in rects
    keys = ("x", "y", "width", "height")
    drawn = [tuple(float(r.get(k, "")) for k in keys) for r in rects if r is not None]
    boxes = label_boxes(DARTS_V2.normal)
    assert [v for box in drawn for v in box] == pytest.approx(
        [v for b in boxes for v in b], abs=0.06
    )
    assert all(0 <= x <= width - w and 0 <= y <= height - h for x, y, w, h in drawn)


def test_labels_never_overlap_on_random_genotypes() -> None:
    space = Darts()
    for seed in range(200):
        for pairs in space.random_arch(seed):
            boxes = label_boxes(pairs)
            assert len(boxes) == 8
            for a, b in itertools.combinations(boxes, 2):
                assert not overlap(a, b), (seed, pairs, a, b)


def test_labels_never_overlap_for_any_choice_of_inputs() -> None:
    """Every label is as wide as the longest op name and sits where it does by its pair's
    input alone: the 180 input structures of a cell cover every genotype."""
    structures = list(input_structures())
    assert len(structures) == 180
    for pairs in structures:
        for a, b in itertools.combinations(label_boxes(pairs), 2):
            assert not overlap(a, b), pairs


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("normal", "arch: expected a JSON object, got str"),
        ({"normal": list(DARTS_V2.normal)}, "reduce: missing"),
        ({**DARTS_V2._asdict(), "reduce": DARTS_V2.reduce[:7]}, "reduce: expected 8 entries"),
        ({**DARTS_V2._asdict(), "normal": [["conv_9x9", 0], *DARTS_V2.normal[1:]]}, "unknown op"),
        ({**DARTS_V2._asdict(), "normal": [["skip_connect", 2], *DARTS_V2.normal[1:]]},
         "normal[0]: node 0 takes inputs 0..1, got 2"),
        ({**DARTS_V2._asdict(), "space": "fbnet"}, "space: architecture is for 'fbnet'"),
    ],
)  # fmt: skip
def test_an_invalid_genotype_raises_arch_error(bad: Any, message: str) -> None:
    with pytest.raises(ArchError) as err:
        genotype_svg(bad)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [(DARTS_V2.normal[:4], "cell: expected 8 entries"), ([("skip_connect", 1)] * 8, "twice")],
)
def test_an_invalid_cell_raises_arch_error(pairs: Sequence[Any], message: str) -> None:
    with pytest.raises(ArchError, match=message):
        cell_svg(pairs, "cell")


def test_titles_are_escaped() -> None:
    title = 'a <b> & "c"'
    svg = cell_svg(DARTS_V2.reduce, title)
    assert "<b>" not in svg and "&lt;b&gt; &amp;" in svg
    root = ET.fromstring(svg)
    assert [t.text for t in of_class(root, "text", "title")] == [title]
    assert root.get("role") == "img" and root.get("aria-label") == title


def test_the_module_needs_neither_torch_nor_numpy() -> None:
    code = "import sys, searchers.spaces.darts_draw; print(' '.join(sorted(sys.modules)))"
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert not {"torch", "numpy", "latency_service", "hwlat"} & set(out.stdout.split())
