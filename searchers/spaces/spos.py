"""SPOS ShuffleNetV2 space (Guo et al., 2019): 20 choice blocks x 4 candidates.

Stem 3x3 conv 16 (stride 2); four stages of 4, 4, 8, 4 choice blocks with 64, 160,
320, 640 channels, the first block of each stage with stride 2; then a 1x1 conv to
1024, global pool and classifier. Candidates: ShuffleNetV2 units with k 3, 5, 7 and
the Xception-like unit.
"""

from __future__ import annotations

from profiler.ops import OpSpec
from searchers.spaces._chain import ChainSpace
from searchers.spaces._registry import register_space
from searchers.spaces.base import Choice, Layer

STAGES = ((64, 4), (160, 4), (320, 8), (640, 4))


@register_space
class SposShuffleNet(ChainSpace):
    name = "spos-shufflenet"
    candidates = ("shuffle3", "shuffle5", "shuffle7", "xception")
    description = "SPOS ShuffleNetV2 space: 20 choice blocks x 4 candidates"

    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        n, r, dt = self.batch, self.resolution, self.dtype
        c_stem = self.width_of(16)
        stem = OpSpec.make("conv", (n, 3, r, r), dt, cin=3, cout=c_stem, k=3, s=2)
        h, cin = stem.out_shape[2], c_stem
        layers: list[Layer] = []
        for stage, (c, repeats) in enumerate(STAGES):
            cout = self.width_of(c)
            for i in range(repeats):
                s = 2 if i == 0 else 1
                shape = (n, cin, h, h)
                choices = [
                    Choice(
                        f"shuffle{k}",
                        OpSpec.make("shuffle", shape, dt, cin=cin, cout=cout, k=k, s=s),
                    )
                    for k in (3, 5, 7)
                ]
                xception = OpSpec.make("xception", shape, dt, cin=cin, cout=cout, s=s)
                layers.append(
                    Layer(
                        f"stage{stage + 1}.block{i + 1}", (*choices, Choice("xception", xception))
                    )
                )
                h, cin = xception.out_shape[2], cout
        head = OpSpec.make(
            "head", (n, cin, h, h), dt, cin=cin, cmid=self.width_of(1024), cout=self.classes
        )
        return [stem, head], layers
