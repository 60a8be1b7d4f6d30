"""ProxylessNAS mobile space: the MobileNetV2 macro-architecture with searchable blocks.

Stem 3x3 conv 32 (stride 2) and a fixed MBConv1 k3 to 16 channels; then 21 searchable
layers in six stages (24, 40, 80, 96, 192, 320 channels; 4, 4, 4, 4, 4, 1 layers;
strides 2, 2, 2, 1, 2, 1); then a 1x1 conv to 1280, global pool and classifier.
Candidates: MBConv k in {3, 5, 7} x e in {3, 6}, plus `zero` on the layers with a
residual (every layer but the first of a stage): the block is dropped and the layer
becomes the identity path.
"""

from __future__ import annotations

from profiler.ops import OpSpec
from searchers.spaces._chain import ChainSpace
from searchers.spaces._registry import register_space
from searchers.spaces.base import Choice, Layer, SearchSpace

STAGES = ((24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))
BLOCKS = tuple((k, e) for k in (3, 5, 7) for e in (3, 6))


def mbv2_stem(space: SearchSpace) -> tuple[OpSpec, OpSpec]:
    """The MobileNetV2 stem both ProxylessNAS and Single-Path NAS keep fixed: a 3x3 conv
    to 32 at stride 2 and an MBConv1 k3 to 16."""
    n, r, dt = space.batch, space.resolution, space.dtype
    c_stem, c_first = space.width_of(32), space.width_of(16)
    stem = OpSpec.make("conv", (n, 3, r, r), dt, cin=3, cout=c_stem, k=3, s=2, act="relu6")
    h = stem.out_shape[2]
    first = OpSpec.make("mbconv", (n, c_stem, h, h), dt, cin=c_stem, cout=c_first, e=1, k=3, s=1)
    return stem, first


def mbv2_layers(
    space: SearchSpace,
    stages: tuple[tuple[int, int, int], ...],
    blocks: tuple[tuple[int, int], ...],
    identity: str,
    after: OpSpec,
) -> tuple[list[Layer], tuple[int, ...]]:
    """MobileNetV2 stages of searchable layers after the op `after`: per layer MBConv
    k x e for each of `blocks`, plus `identity` (the block dropped, the layer its
    residual path) on the layers with a residual. Returns the layers and the last shape."""
    n, dt = space.batch, space.dtype
    _, cin, h, _ = after.out_shape
    layers = []
    for stage, (c, repeats, stride) in enumerate(stages):
        cout = space.width_of(c)
        for i in range(repeats):
            s, res = (stride, 0) if i == 0 else (1, 1)
            shape = (n, cin, h, h)
            choices = [
                Choice(
                    f"{k}x{k}_MBConv{e}",
                    OpSpec.make("mbconv", shape, dt, cin=cin, cout=cout, e=e, k=k, s=s, res=res),
                )
                for k, e in blocks
            ]
            skip = OpSpec.make("skip", shape, dt, cin=cin, cout=cout, s=1) if res else None
            layers.append(
                Layer(f"stage{stage + 1}.block{i + 1}", (*choices, Choice(identity, skip)))
            )
            h, cin = choices[0].op.out_shape[2], cout  # type: ignore[union-attr]
    return layers, (n, cin, h, h)


def mbv2_mid(space: SearchSpace) -> int:
    """The head's 1x1 conv width: 1280, widened (never narrowed) with the width."""
    return 1280 if space.width <= 1.0 else space.width_of(1280)


@register_space
class ProxylessMobile(ChainSpace):
    name = "proxyless-mobile"
    candidates = (*(f"{k}x{k}_MBConv{e}" for k, e in BLOCKS), "zero")
    description = "ProxylessNAS (mobile) MobileNetV2-based space: 21 layers x 7 candidates"
    n_stem = 2

    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        stem, first = mbv2_stem(self)
        layers, shape = mbv2_layers(self, STAGES, BLOCKS, "zero", first)
        cin = shape[1]
        head = OpSpec.make(
            "head", shape, self.dtype, cin=cin, cmid=mbv2_mid(self), cout=self.classes, act="relu6"
        )
        return [stem, first, head], layers
