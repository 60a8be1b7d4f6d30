"""The search spaces: sizes, shape chains, architectures and child networks."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from profiler.features import features
from profiler.ops import OpSpec
from searchers.spaces import (
    ArchError,
    SearchSpace,
    create_space,
    list_spaces,
    register_space,
    space_class,
)

SMALL = {  # fast configurations for building and running child networks
    "proxyless-mobile": {"resolution": 32},
    "singlepath-mobile": {"resolution": 32},
    "fbnet": {"resolution": 32},
    "hwnasbench-fbnet": {},  # CIFAR-100: 32x32 by default
    "spos-shufflenet": {"resolution": 32},
    "darts": {"resolution": 16, "C": 4, "cells": 5},
    "densenas": {"resolution": 32},
}


def test_registry_lists_every_space() -> None:
    assert list_spaces() == [
        "darts",
        "densenas",
        "fbnet",
        "hwnasbench-fbnet",
        "proxyless-mobile",
        "singlepath-mobile",
        "spos-shufflenet",
    ]
    with pytest.raises(ValueError, match=r"^space: unknown search space 'nope'"):
        create_space("nope")
    with pytest.raises(RuntimeError, match="registered twice"):
        register_space(space_class("fbnet"))


@pytest.mark.parametrize(
    ("name", "layers", "size"),
    [
        ("proxyless-mobile", 21, 6**6 * 7**15),
        ("fbnet", 22, 9**16 * 8**6),
        ("hwnasbench-fbnet", 22, 9**22),
        ("singlepath-mobile", 20, 5**15 * 4**5),
        ("spos-shufflenet", 20, 4**20),
        ("darts", 8 * 14, (math.prod(math.comb(i + 2, 2) for i in range(4)) * 7**8) ** 2),
    ],
)
def test_layer_count_and_size(name: str, layers: int, size: int) -> None:
    space = create_space(name)
    assert len(space.layers()) == layers
    assert space.size() == size


def test_fbnet_masks_skip_exactly_where_the_shape_changes() -> None:
    space = create_space("fbnet", resolution=224)
    masked = [layer.name for layer in space.layers() if len(layer.legal) == 8]
    assert masked == ["tbs2", "tbs6", "tbs10", "tbs14", "tbs18", "tbs22"]
    for layer in space.layers():
        op = layer.op("ir_k3_e1")
        skip_legal = any(c.name == "skip" for c in layer.legal)
        assert skip_legal == (op.num("s") == 1 and op.num("cin") == op.num("cout"))
    assert space.summary()["size_formula"] == "9^16 * 8^6"


def test_hwnasbench_fbnet_follows_hw_nas_bench() -> None:
    """Skip legal on every layer (a 1x1 conv + BN + ReLU where the shape changes), the
    ConvBlock's expansion kept at e=1, CIFAR's stride-1 stem and 1504-wide head."""
    space = create_space("hwnasbench-fbnet")
    assert (space.resolution, space.classes) == (32, 100)
    assert space.summary()["size_formula"] == "9^22"
    stem, head = space.fixed_ops()
    assert (stem.kind, stem.num("s"), stem.num("cout"), stem.p["act"]) == ("conv", 1, 16, "relu")
    assert (head.num("cmid"), head.num("cout"), head.shape) == (1504, 100, (1, 352, 4, 4))
    projections = []
    for layer in space.layers():
        block, skip = layer.op("k3_e1"), layer.op("skip")
        keeps = block.num("s") == 1 and block.num("cin") == block.num("cout")
        assert block.p["res"] == int(keeps) and block.p["act"] == "relu"
        assert block.p["pw"] == 1 and layer.op("k5_e1").p["pw"] == 1
        assert layer.op("k3_e1_g2").p["pw"] == 0 and layer.op("k3_e6").p["pw"] == 0
        if keeps:
            assert skip.kind == "skip"
        else:
            assert (skip.kind, skip.num("k"), skip.p["act"]) == ("conv", 1, "relu")
            assert skip.out_shape == block.out_shape
            projections.append(layer.name)
    assert projections == ["layer1", "layer5", "layer9", "layer13", "layer17", "layer21"]
    assert len(space.distinct_ops()) == 2 + 12 * 9  # 12 distinct layer shapes
    wide = create_space("hwnasbench-fbnet", width=2.0)
    assert wide.fixed_ops()[1].num("cmid") == 3008 and wide.size() == 9**22


def test_proxyless_zero_only_on_residual_layers() -> None:
    space = create_space("proxyless-mobile", resolution=224)
    with_zero = [layer for layer in space.layers() if len(layer.legal) == 7]
    assert len(with_zero) == 15
    for layer in with_zero:
        assert layer.op("zero").kind == "skip"
        assert layer.op("5x5_MBConv6").p["res"] == 1
    stages = [layer.op("3x3_MBConv3").num("cout") for layer in space.layers()]
    assert sorted(set(stages)) == [24, 40, 80, 96, 192, 320]


def test_singlepath_skip_only_on_residual_layers() -> None:
    space = create_space("singlepath-mobile", resolution=224)
    masked = [layer.name for layer in space.layers() if len(layer.legal) == 4]
    assert masked == [f"stage{i}.block1" for i in range(1, 6)]
    for layer in space.layers():
        op = layer.op("5x5_MBConv6")
        skip_legal = any(c.name == "skip" for c in layer.legal)
        assert skip_legal == (op.num("s") == 1 and op.num("cin") == op.num("cout"))
    stem, first, last, head = space.fixed_ops()
    assert (stem.num("cout"), first.num("cout"), last.num("cout")) == (32, 16, 320)
    assert (first.num("e"), last.num("e"), last.num("k")) == (1, 6, 3)
    assert head.num("cmid") == 1280 and head.out_shape == (1, 1000)


@pytest.mark.parametrize("name", list_spaces())
def test_shapes_chain_through_the_space(name: str) -> None:
    space = create_space(name, **SMALL[name])
    for layer in space.layers():
        legal = [c.op for c in layer.legal if c.op is not None]
        assert len({op.shape for op in legal}) == 1, layer.name
        assert len({op.out_shape for op in legal}) == 1, layer.name
        assert [c.name for c in layer.choices] == list(space.candidates)
    distinct = space.distinct_ops()
    assert len(distinct) == len(set(distinct))
    expected = set(space.fixed_ops()) | {
        c.op for layer in space.layers() for c in layer.legal if c.op is not None
    }
    assert set(distinct) == expected


@pytest.mark.parametrize("name", list_spaces())
def test_arch_json_round_trip(name: str) -> None:
    space = create_space(name, **SMALL[name])
    for seed in range(5):
        arch = space.random_arch(seed)
        data = json.loads(json.dumps(space.arch_to_json(arch)))
        assert space.parse_arch(data) == arch
        assert data["space"] == name


def _block_modules(net: nn.Module) -> list[nn.Module]:
    if hasattr(net, "block_modules"):
        return list(net.block_modules())
    return list(net.blocks)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list_spaces())
def test_child_blocks_are_exactly_the_arch_ops(name: str) -> None:
    space = create_space(name, **SMALL[name])
    arch = space.random_arch(7)
    specs = space.arch_ops(arch)
    net = space.build_child(arch)
    blocks = _block_modules(net)
    assert len(blocks) == len(specs)
    seen: list[tuple[int, ...]] = [()] * len(blocks)

    def hook(i: int):  # record the input shape each block really sees
        def fn(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            seen[i] = tuple(args[0].shape)

        return fn

    for i, block in enumerate(blocks):
        block.register_forward_pre_hook(hook(i))
    with torch.inference_mode():
        y = net(torch.randn(specs[0].shape))
    assert tuple(y.shape) == (1, space.classes)
    assert seen == [spec.shape for spec in specs]
    for block, spec in zip(blocks, specs, strict=True):
        assert sum(p.numel() for p in block.parameters()) == features(spec).params, spec.key


def test_fbnet_illegal_and_unknown_choices_are_clear_errors() -> None:
    space = create_space("fbnet", resolution=32)
    good = list(space.random_arch(0))
    with pytest.raises(ArchError, match=r"choices: expected 22 entries, got 21"):
        space.parse_arch(good[:-1])
    bad = [*good[:1], "skip", *good[2:]]
    with pytest.raises(ArchError, match=r"^tbs2: 'skip' is illegal here"):
        space.parse_arch(bad)
    with pytest.raises(ArchError, match=r"^tbs1: unknown op 'ir_k7_e6'"):
        space.parse_arch(["ir_k7_e6", *good[1:]])
    with pytest.raises(ArchError, match=r"^resolution: architecture is for 224"):
        space.parse_arch({"space": "fbnet", "resolution": 224, "choices": good})
    with pytest.raises(ArchError, match=r"^choices: missing"):
        space.parse_arch({"space": "fbnet"})
    with pytest.raises(ArchError, match=r"^extra: unknown field"):
        space.parse_arch({"choices": good, "extra": 1})
    with pytest.raises(ArchError, match=r"^choices: expected a list"):
        space.parse_arch("ir_k3_e1")


def test_darts_genotype_validation() -> None:
    space = create_space("darts", **SMALL["darts"])
    arch = space.arch_to_json(space.random_arch(3))
    cases = {
        r"^normal: expected 8 entries": {**arch, "normal": arch["normal"][:6]},
        r"^reduce\[0\]: unknown op 'none'": {**arch, "reduce": [["none", 0], *arch["reduce"][1:]]},
        r"^normal\[0\]: node 0 takes inputs 0..1, got 2": {
            **arch,
            "normal": [["skip_connect", 2], *arch["normal"][1:]],
        },
        r"^normal\[1\]: node 0 uses input 0 twice": {
            **arch,
            "normal": [["skip_connect", 0], ["sep_conv_3x3", 0], *arch["normal"][2:]],
        },
        r"^normal_concat: only the full": {**arch, "normal_concat": [2, 3]},
        r"^cells: architecture is for 8": {**arch, "cells": 8},
    }
    for pattern, data in cases.items():
        with pytest.raises(ArchError, match=pattern):
            space.parse_arch(data)
    # A genotype copied from the DARTS repository (with its concat lists) is accepted.
    assert space.parse_arch({**arch, "normal_concat": [2, 3, 4, 5]}) == space.parse_arch(arch)


def test_darts_layers_group_edges_by_cell_type() -> None:
    space = create_space("darts", **SMALL["darts"])
    groups = {layer.group for layer in space.layers()}
    assert groups == {f"{t}.edge{e}" for t in ("normal", "reduce") for e in range(14)}
    reduction = [layer for layer in space.layers() if layer.group.startswith("reduce")]
    assert len(reduction) == 2 * 14  # cells 1 and 3 of 5
    strides = [layer.op("sep_conv_3x3").num("s") for layer in reduction[:14]]
    assert strides == [2, 2, 2, 2, 1, 2, 2, 1, 1, 2, 2, 1, 1, 1]


def test_width_multiplier_scales_channels() -> None:
    narrow = create_space("fbnet", resolution=64, width=0.5)
    wide = create_space("fbnet", resolution=64, width=2.0)
    assert narrow.fixed_ops()[0].num("cout") == 8
    assert wide.layers()[-1].op("ir_k3_e1").num("cout") == 704
    assert narrow.size() == wide.size() == 9**16 * 8**6


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"resolution": 0}, "^resolution: must be a positive integer"),
        ({"resolution": 32.0}, "^resolution: must be a positive integer"),
        ({"width": -1.0}, "^width: must be a positive number"),
        ({"classes": 0}, "^classes: must be a positive integer"),
        ({"dtype": "float64"}, "^dtype: must be one of"),
    ],
)
def test_bad_space_parameters(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        create_space("fbnet", **kwargs)


def test_darts_parameters_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^cells: DARTS needs 3 to 64 cells"):
        create_space("darts", cells=2)
    with pytest.raises(ValueError, match=r"^cells: DARTS needs 3 to 64 cells"):
        create_space("darts", cells=1000)  # bounded: the service builds spaces on request
    with pytest.raises(ValueError, match=r"^C: at most 1024"):
        create_space("darts", C=4096)
    with pytest.raises(ValueError, match=r"^C: must be a positive integer"):
        create_space("darts", C=0)
    with pytest.raises(ValueError, match=r"^resolution/width: darts cannot be built"):
        create_space("darts", resolution=6)  # 6 -> 3: a factorized reduce needs even sides


def test_every_space_is_a_search_space() -> None:
    for name in list_spaces():
        space = create_space(name, **SMALL[name])
        assert isinstance(space, SearchSpace)
        assert all(isinstance(op, OpSpec) for op in space.fixed_ops())
        summary = space.summary()
        assert summary["searchable_layers"] == len(space.layers())
        assert summary["distinct_ops"] == len(space.distinct_ops())


def test_spos_without_channel_search_keeps_its_ops_and_keys() -> None:
    import hashlib

    space = create_space("spos-shufflenet", channels=0)
    assert space.candidates == ("shuffle3", "shuffle5", "shuffle7", "xception")
    assert "channels" not in space.params()
    keys = [op.key for op in space.distinct_ops()]
    assert len(keys) == 34 and not any(",mid=" in k for k in keys)
    # the digest of the keys from before `mid` existed: stored tables stay valid
    assert hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16] == "befbe8ef2cad7a38"


def test_spos_channel_search_candidates_and_widths() -> None:
    space = create_space("spos-shufflenet", resolution=32, classes=10, channels=10)
    scales = [f"{i / 5:.1f}" for i in range(1, 11)]  # 0.2 ... 2.0
    assert space.candidates[:10] == tuple(f"shuffle3_c{s}" for s in scales)
    assert space.candidates[-1] == "xception_c2.0" and len(space.candidates) == 40
    assert all(len(layer.legal) == 40 for layer in space.layers())
    plain = create_space("spos-shufflenet", resolution=32, classes=10)
    for layer, base in zip(space.layers(), plain.layers(), strict=True):
        cout = layer.op("shuffle3_c1.0").num("cout")
        assert layer.op("shuffle3_c1.0") == base.op("shuffle3")  # x1.0 is the default op
        assert layer.op("xception_c2.0").num("mid") == cout
        assert layer.op("shuffle7_c0.2").num("mid") == max(1, round(cout / 2 * 0.2))
    assert space.size() == 40**20
    assert create_space("spos-shufflenet", channels=3).candidates[:3] == (
        "shuffle3_c0.67",
        "shuffle3_c1.33",
        "shuffle3_c2.00",
    )
    assert len(set(create_space("spos-shufflenet", channels=7).candidates)) == 28


def test_spos_channel_search_children_and_arch_json() -> None:
    space = create_space("spos-shufflenet", resolution=32, classes=10, channels=10)
    assert space.params()["channels"] == 10
    assert space.summary()["candidates"] == list(space.candidates)
    arch = space.random_arch(3)
    with torch.inference_mode():
        y = space.build_child(arch)(torch.randn(1, 3, 32, 32))
    assert tuple(y.shape) == (1, 10)
    data = json.loads(json.dumps(space.arch_to_json(arch)))
    assert data["channels"] == 10 and space.parse_arch(data) == arch
    with pytest.raises(ArchError, match=r"^channels: architecture is for 4"):
        space.parse_arch({**data, "channels": 4})
    plain = create_space("spos-shufflenet", resolution=32, classes=10)
    assert plain.parse_arch({**plain.arch_to_json(plain.random_arch(0)), "channels": 0})
    with pytest.raises(ArchError, match=r"unknown op '(shuffle[357]|xception)' "):
        space.parse_arch(plain.arch_to_json(plain.random_arch(0)))


@pytest.mark.parametrize("channels", [-1, 21, True, 2.0])
def test_spos_channels_are_checked(channels: object) -> None:
    with pytest.raises(ValueError, match=r"^channels: "):
        create_space("spos-shufflenet", channels=channels)
