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
from searchers.spaces.base import Layer
from searchers.spaces.proxyless import mbv2_layers, mbv2_mid, mbv2_stem

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
        stem, first = mbv2_stem(self)
        layers, shape = mbv2_layers(self, STAGES, BLOCKS, "skip", first)
        cin, c_last = shape[1], self.width_of(320)
        last = OpSpec.make("mbconv", shape, self.dtype, cin=cin, cout=c_last, e=6, k=3, s=1)
        head = OpSpec.make(
            "head", last.out_shape, self.dtype, cin=c_last, cmid=mbv2_mid(self),
            cout=self.classes, act="relu6",
        )  # fmt: skip
        return [stem, first, last, head], layers
