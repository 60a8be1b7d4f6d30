"""A DARTS cell genotype drawn as SVG text, with the standard library only.

One cell, top to bottom, one row per node, ROW px apart: the inputs c_{k-2} and c_{k-1}
at the top left (rows 0 and 1), the intermediate nodes 0..3 (rows 2..5) zigzagging right
and left, so that no straight edge passes near a node it does not join, and the output
c_{k} (row 6) at the bottom, fed by a dashed arrow from every node (the concatenation).
Each (op, input) pair is an arrow from its input to its node, coloured by op family (a
legend underneath) and labelled with the op name where it crosses its label band.

Why labels never overlap: every input of node i lies in a row above it, so every edge
into node i crosses the strip between node i's row and the row above. That strip holds
two label bands, one per pair of node i (the first pair's above the second's), and the
bands of all eight pairs are disjoint horizontal strips clear of the nodes. Two labels
therefore never share a band, for any genotype. `label_boxes` gives the boxes.

`genotype_svg` puts the normal and the reduction cell side by side in one document.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from searchers.spaces.darts import OPS, Darts, Genotype

Box = tuple[float, float, float, float]  # x, y of the top left corner, width, height
Point = tuple[float, float]

FONT = 10  # px, monospace: a label's width is known without a font engine
ROW = 80  # px between rows: a node, the two label bands of the next node, that node
RY = 14  # every node is an ellipse this tall (half height)
# x of c_{k-2}, c_{k-1}, nodes 0..3 and c_{k}, one per row: chosen (by a search over
# positions) so that no straight edge between two of them passes within 16 px of a third
XS = (50, 0, 200, 80, 200, 50, 120)
RX = (28, 28, RY, RY, RY, RY, 28)
NAMES = ("c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}")
OUT = len(NAMES) - 1
LABEL_W = 0.6 * FONT * max(map(len, OPS)) + 8  # one width for every label: the longest
LABEL_H = FONT + 5
MARGIN = LABEL_W / 2 + 6  # a label is centred on its edge, which may run along a side
TITLE_H = 30
LEGEND_Y = TITLE_H + OUT * ROW + 2 * RY + 16
CELL_W = 2 * MARGIN + max(XS)
CELL_H = LEGEND_Y + 2 * 16 + 4
GAP = 24  # between the two cells of a genotype
FAMILIES = {"max": "pool", "avg": "pool", "skip": "skip", "sep": "sep conv", "dil": "dil conv"}
COLOURS = {"pool": "#0072b2", "skip": "#555555", "sep conv": "#d55e00", "dil conv": "#7b3294"}
CONCAT = "#999999"


def cell_svg(pairs: Sequence[Sequence[Any]], title: str) -> str:
    """One cell's 8 (op, input) pairs as a standalone SVG document; raises ArchError
    when they are no DARTS cell."""
    checked = _space()._parse_cell({"cell": pairs}, "cell")  # the checks of parse_arch
    return _document(CELL_W, CELL_H, _cell(checked, title), title)


def genotype_svg(genotype: Genotype | dict[str, Any]) -> str:
    """The normal and the reduction cell side by side in one SVG document.

    A JSON genotype is checked by `Darts().parse_arch` (ArchError says what is wrong) on
    the fields the drawing shows and its `space`: the network's other parameters (C,
    cells, resolution...) do not change a cell's drawing, so any darts network draws."""
    if isinstance(genotype, dict):
        keep = ("space", "normal", "reduce", "normal_concat", "reduce_concat")
        genotype = {k: v for k, v in genotype.items() if k in keep}
    g = _space().parse_arch(genotype)
    cells = (_cell(g.normal, "normal cell"), _cell(g.reduce, "reduction cell"))
    body = [
        f'<g class="cell" transform="translate({i * (CELL_W + GAP):.0f} 0)">{"".join(c)}</g>'
        for i, c in enumerate(cells)
    ]
    return _document(2 * CELL_W + GAP, CELL_H, body, "DARTS genotype: normal and reduction cell")


def label_boxes(pairs: Sequence[Sequence[Any]]) -> list[Box]:
    """Each pair's label box in cell_svg's coordinates (y down): where its edge crosses
    the label band of its pair."""
    boxes: list[Box] = []
    for idx, (_, src) in enumerate(pairs):
        node, slot = divmod(idx, 2)
        (sx, sy), (tx, ty) = _center(src), _center(node + 2)
        y = _band_y(node, slot)
        x = sx + (tx - sx) * (y - sy) / (ty - sy)
        boxes.append((x - LABEL_W / 2, y - LABEL_H / 2, LABEL_W, LABEL_H))
    return boxes


def _family(op: str) -> str:
    """pool, skip, sep conv or dil conv."""
    return FAMILIES[op.split("_")[0]]


@cache
def _space() -> Darts:
    return Darts()


def _center(k: int) -> Point:
    return MARGIN + XS[k], TITLE_H + RY + k * ROW


def _band_y(node: int, slot: int) -> float:
    """The middle of the label band of a node's pair `slot` (0: the upper band)."""
    bottom = _center(node + 2)[1] - RY - 10  # 10 px clear of the node and its arrowheads
    return bottom - LABEL_H / 2 - (1 - slot) * (LABEL_H + 2)


def _rim(k: int, toward: Point) -> Point:
    """Where the line from node k's centre toward a point leaves node k's ellipse."""
    (cx, cy), (tx, ty) = _center(k), toward
    dx, dy = tx - cx, ty - cy
    t = 1 / math.hypot(dx / RX[k], dy / RY)
    return cx + t * dx, cy + t * dy


def _arrow(src: int, dst: int, colour: str, attrs: str) -> str:
    """A straight arrow from node src's rim to node dst's rim, with a filled head."""
    (x0, y0), (x1, y1) = _rim(src, _center(dst)), _rim(dst, _center(src))
    length = math.hypot(x1 - x0, y1 - y0)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    bx, by = x1 - 8 * ux, y1 - 8 * uy  # the base of the head
    head = [(x1, y1), (bx + 3.5 * uy, by - 3.5 * ux), (bx - 3.5 * uy, by + 3.5 * ux)]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in head)
    return (
        f'<line {attrs} x1="{x0:.1f}" y1="{y0:.1f}" x2="{bx:.1f}" y2="{by:.1f}" '
        f'stroke="{colour}" stroke-width="1.5"/><polygon points="{points}" fill="{colour}"/>'
    )


def _cell(pairs: Sequence[tuple[str, int]], title: str) -> list[str]:
    """The elements of one cell: title, dashed concat arrows, the pairs' arrows, nodes,
    labels (last, on top of the lines) and the legend."""
    out = [f'<text class="title" x="{CELL_W / 2:.1f}" y="18" text-anchor="middle" '
           f'font-size="{FONT + 3}" font-weight="bold">{escape(title)}</text>']  # fmt: skip
    dashed = 'class="concat" stroke-dasharray="4 3"'
    out += [_arrow(k, OUT, CONCAT, dashed) for k in range(2, OUT)]
    for idx, (op, src) in enumerate(pairs):
        attrs = f'class="edge" data-op={quoteattr(op)} data-input="{src}"'
        out.append(_arrow(src, idx // 2 + 2, COLOURS[_family(op)], attrs))
    out += [_node(k) for k in range(len(NAMES))]
    for (op, _), (x, y, w, h) in zip(pairs, label_boxes(pairs), strict=True):
        colour = COLOURS[_family(op)]
        out.append(
            f'<g class="label"><rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'rx="3" fill="#ffffff" fill-opacity="0.9" stroke="{colour}" stroke-width="0.8"/>'
            f'<text class="op" x="{x + w / 2:.1f}" y="{y + h / 2 + FONT * 0.35:.1f}" '
            f'text-anchor="middle" fill="{colour}">{escape(op)}</text></g>'
        )
    return [*out, *_legend()]


def _node(k: int) -> str:
    x, y = _center(k)
    fill = "#fff3c4" if 2 <= k < OUT else "#dfe9f7" if k < 2 else "#dff2e3"
    return (
        f'<g class="node"><ellipse cx="{x:.1f}" cy="{y:.1f}" rx="{RX[k]}" ry="{RY}" '
        f'fill="{fill}" stroke="#333333"/><text x="{x:.1f}" y="{y + FONT * 0.35:.1f}" '
        f'text-anchor="middle">{escape(NAMES[k])}</text></g>'
    )


def _legend() -> list[str]:
    """The four op families' colours, two a row, under the cell."""
    out = []
    for i, (name, colour) in enumerate(COLOURS.items()):
        x, y = 10 + (i % 2) * (CELL_W - 20) / 2, LEGEND_Y + (i // 2) * 16
        out.append(
            f'<g class="legend"><line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 18:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="2.5"/><text x="{x + 24:.1f}" '
            f'y="{y + FONT * 0.35:.1f}" fill="{colour}">{escape(name)}</text></g>'
        )
    return out


def _document(width: float, height: float, body: Iterable[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="monospace" '
        f'font-size="{FONT}" role="img" aria-label={quoteattr(label)}>' + "".join(body) + "</svg>"
    )
