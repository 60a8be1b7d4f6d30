"""Single-Path NAS mobile space (Stamoulis et al., 2019): the supernet of its reference
`supernet_macro.py`, 20 searchable layers x 5 candidates.

Stem 3x3 conv 32 (stride 2) and a fixed MBConv1 k3 to 16 channels (block 0); then 20
searchable layers in five stages (24, 40, 80, 96, 192 channels; 4 layers each; strides
2, 2, 2, 1, 2: blocks 1..20); then a fixed MBConv6 k3 to 320 (block 21), a 1x1 conv to
1280, global pool and classifier. Candidates: MBConv k in {3, 5} x e in {3, 6} (the
reference's superkernel choices) and `skip`, only on the layers with a residual (every
layer but the first of a stage): the reference drops such a layer whole, leaving the
identity path. Its runtime table is the `singlepath-json` format.
"""

from __future__ import annotations

from profiler.ops import OpSpec
from searchers.spaces._chain import ChainSpace
from searchers.spaces._registry import register_space
from searchers.spaces.base import Choice, Layer

STAGES = ((24, 4, 2), (40, 4, 2), (80, 4, 2), (96, 4, 1), (192, 4, 2))
# (kernel, expansion) in the reference runtime file's op order "0".."3"
BLOCKS = ((3, 3), (3, 6), (5, 3), (5, 6))


@register_space
class SinglePathMobile(ChainSpace):
    name = "singlepath-mobile"
    candidates = (*(f"{k}x{k}_MBConv{e}" for k, e in BLOCKS), "skip")
    description = "Single-Path NAS (mobile) MobileNetV2-based space: 20 layers x 5 candidates"
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
                skip = OpSpec.make("skip", shape, dt, cin=cin, cout=cout, s=1) if res else None
                layers.append(
                    Layer(f"stage{stage + 1}.block{i + 1}", (*choices, Choice("skip", skip)))
                )
                h, cin = choices[0].op.out_shape[2], cout  # type: ignore[union-attr]
        c_last = self.width_of(320)
        last = OpSpec.make("mbconv", (n, cin, h, h), dt, cin=cin, cout=c_last, e=6, k=3, s=1)
        mid = 1280 if self.width <= 1.0 else self.width_of(1280)  # as proxyless-mobile
        head = OpSpec.make(
            "head", (n, c_last, h, h), dt, cin=c_last, cmid=mid, cout=self.classes, act="relu6"
        )
        return [stem, first, last, head], layers
