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
from searchers.spaces.base import Choice, Layer

STAGES = ((24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2), (320, 1, 1))
BLOCKS = tuple((k, e) for k in (3, 5, 7) for e in (3, 6))


@register_space
class ProxylessMobile(ChainSpace):
    name = "proxyless-mobile"
    candidates = (*(f"{k}x{k}_MBConv{e}" for k, e in BLOCKS), "zero")
    description = "ProxylessNAS (mobile) MobileNetV2-based space: 21 layers x 7 candidates"
    n_stem = 2

    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        n, r, dt = self.batch, self.resolution, self.dtype
        c_stem, c_first = self.width_of(32), self.width_of(16)
        stem = OpSpec.make("conv", (n, 3, r, r), dt, cin=3, cout=c_stem, k=3, s=2, act="relu6")
        h = stem.out_shape[2]
        first = OpSpec.make(
            "mbconv", (n, c_stem, h, h), dt, cin=c_stem, cout=c_first, e=1, k=3, s=1
        )
        layers, cin = [], c_first
        for stage, (c, repeats, stride) in enumerate(STAGES):
            cout = self.width_of(c)
            for i in range(repeats):
                s, res = (stride, 0) if i == 0 else (1, 1)
                shape = (n, cin, h, h)
                choices = [
                    Choice(
                        f"{k}x{k}_MBConv{e}",
                        OpSpec.make(
                            "mbconv", shape, dt, cin=cin, cout=cout, e=e, k=k, s=s, res=res
                        ),
                    )
                    for k, e in BLOCKS
                ]
                zero = OpSpec.make("skip", shape, dt, cin=cin, cout=cout, s=1) if res else None
                layers.append(
                    Layer(f"stage{stage + 1}.block{i + 1}", (*choices, Choice("zero", zero)))
                )
                h, cin = choices[0].op.out_shape[2], cout  # type: ignore[union-attr]
        last = 1280 if self.width <= 1.0 else self.width_of(1280)
        head = OpSpec.make(
            "head", (n, cin, h, h), dt, cin=cin, cmid=last, cout=self.classes, act="relu6"
        )
        return [stem, first, head], layers
