"""The DenseNAS space: its blocks and connections follow the reference's rules, every
position holds the candidate axis with `none` free, its size is the count of routes x
choices, an architecture maps to table columns and back, its latency is the sum over
its ops, and bad architectures are refused naming the field."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from hwlat.cli import app
from profiler.features import features
from searchers.latency import LatencyTable
from searchers.spaces import ArchError, create_space
from searchers.spaces.densenas import MBCONVS, STAGES, DenseNas
from tests.searchers.conftest import all_routes, flops_table


def _space(**kw: int) -> DenseNas:
    space = create_space("densenas", resolution=32, classes=10, **kw)
    assert isinstance(space, DenseNas)
    return space


def test_blocks_and_connections_follow_densenas() -> None:
    space = _space()
    blocks = space.blocks
    assert [b.width for b in blocks] == [16, 24, 32, 48, 56, 72, 96, 128, 160, 192, 320]
    assert [b.size for b in blocks] == [16, 8, 4, 4, 2, 2, 2, 2, 1, 1, 1]
    for b in blocks[1:]:
        assert b.inputs and max(b.inputs) == b.index - 1  # the block before always feeds it
        assert all(b.index - a <= space.connections for a in b.inputs)
        assert all(b.stage - blocks[a].stage in (0, 1) for a in b.inputs)
        for a, row in zip(b.inputs, b.heads, strict=True):
            op = space.layers()[row].op(MBCONVS[0])
            halves = b.stage != blocks[a].stage and STAGES[b.stage - 1][1] == 2
            assert (op.num("cin"), op.num("cout"), op.num("s")) == (
                blocks[a].width, b.width, 2 if halves else 1)  # fmt: skip
        assert len(b.rows) == space.n_layers
    assert space.n_routes() == 81 and len(space.layers()) == 41
    one = _space(connections=1)
    assert all(len(b.inputs) == 1 for b in one.blocks[1:]) and one.n_routes() == 1


def test_candidates_per_position_and_the_free_none() -> None:
    space = _space(layers=1)
    table = flops_table(space)
    none, skip = space.candidates.index("none"), space.candidates.index("skip")
    heads = {row for b in space.blocks for row in b.heads}
    for row, layer in enumerate(space.layers()):
        assert [c.name for c in layer.choices] == list(space.candidates)
        assert table.source[row][none] == "free" and float(table.table[row, none]) == 0.0
        assert (layer.choices[skip].op is None) == (row in heads)
    assert set(space.distinct_ops()) >= {c.op for la in space.layers() for c in la.legal}


@pytest.mark.parametrize("kw", [{}, {"blocks": 1}, {"blocks": 3, "layers": 1, "connections": 3}])
def test_size_counts_routes_times_choices(kw: dict[str, int]) -> None:
    space = _space(**kw)
    per = len(MBCONVS) * (len(MBCONVS) + 1) ** space.n_layers
    routes = all_routes(space)
    assert len(routes) == space.n_routes()
    assert space.size() == sum(per ** len(r) for r in routes)
    assert eval(space.size_formula().replace("^", "**")) == space.size()


def test_columns_round_trip_and_latency_is_the_ops_sum() -> None:
    space = _space()
    table = flops_table(space)
    ms = {op.key: 0.005 + features(op).flops * 2e-8 for op in space.distinct_ops()}
    for seed in range(10):
        arch = space.random_arch(seed)
        data = json.loads(json.dumps(space.arch_to_json(arch)))
        assert space.parse_arch(data) == arch and data["space"] == "densenas"
        cols = space.arch_columns(data)
        assert space.columns_arch(cols) == arch
        assert space.parse_arch(table.names(cols)) == arch  # per-layer names, `none` off it
        ops = space.arch_ops(arch)
        assert table.exact(cols) == pytest.approx(sum(ms[op.key] for op in ops))
        assert len(ops) == 3 + len(arch.blocks) * (1 + space.n_layers)
    child = space.build_child(space.arch_to_json(space.random_arch(0)))
    assert child.specs == space.arch_ops(space.random_arch(0))  # type: ignore[attr-defined]
    assert child(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_short_routes_are_drawn_too() -> None:
    space = _space(layers=0)  # no layer factor: routes drawn in proportion to their count
    lengths = {len(space.random_arch(seed).blocks) for seed in range(200)}
    assert len(lengths) >= 3


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"route": [1, 2, 3]}, r"^route: must end at the last block, 10"),
        ({"route": [1, 4, 6, 8, 10]}, r"^route: block 4 does not take block 1's output"),
        ({"route": [2, 4, 6, 8, 10]}, r"^route: block 2 does not take block 0's output"),
        ({"route": [0, 10]}, r"^route: blocks are 1..10, got 0"),
        ({"choices": ["skip"] * 3}, r"^choices: expected 30 entries, got 3"),
        ({"choices": ["none"] + ["3x3_MBConv3"] * 29}, r"^choices\[0\]: expected a candidate"),
        ({"choices": ["skip"] + ["3x3_MBConv3"] * 29}, r"^block1.in0: 'skip' is illegal here"),
        ({"width": 0.5}, r"^width: architecture is for 0.5"),
        ({"depth": 3}, r"^depth: unknown field"),
    ],
)
def test_bad_architectures_name_the_field(change: dict[str, object], pattern: str) -> None:
    space = _space()
    data = {**space.arch_to_json(space.random_arch(0)), **change}
    with pytest.raises(ArchError, match=pattern):
        space.parse_arch(data)


def test_columns_off_a_route_are_refused(tiny_dense_table: LatencyTable) -> None:
    space = tiny_dense_table.space
    assert isinstance(space, DenseNas)
    cols = space.arch_columns(space.random_arch(1))
    off = next(r for r, c in enumerate(cols) if c == space.candidates.index("none"))
    with pytest.raises(ArchError, match="columns:"):
        space.columns_arch([*cols[:off], 0, *cols[off + 1 :]])


@pytest.mark.parametrize("kw", [{"blocks": 4}, {"layers": -1}, {"connections": 0}])
def test_bad_options(kw: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=rf"^{next(iter(kw))}: an integer in"):
        _space(**kw)


def test_spaces_show_lists_the_routing_layers() -> None:
    out = CliRunner().invoke(app, ["spaces", "show", "densenas", "-r", "32", "-o", "layers=1"])
    assert out.exit_code == 0, out.output
    assert "block10.in9" in out.output and "block10.layer1" in out.output
    assert "size: " in out.output and "(6*7^1)^" in out.output
    summary = json.loads(CliRunner().invoke(app, ["spaces", "show", "densenas", "--json"]).output)
    assert summary["routes"] == 81 and summary["blocks"][1]["inputs"] == [0]
