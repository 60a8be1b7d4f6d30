"""FBNet space (Wu et al., CVPR 2019, Table 1): 22 searchable layers x 9 blocks.

Stem 3x3 conv 16 (stride 2); TBS layers with channels 16, 24, 32, 64, 112, 184, 352,
repeats 1, 4, 4, 4, 4, 4, 1 and first strides 1, 2, 2, 2, 1, 2, 1; then a 1x1 conv to
1984, global pool and classifier. Blocks: inverted residuals ir_k{3,5}_e{1,3,6}, the
grouped ir_k{3,5}_e1_g2 (1x1 group convs with a channel shuffle) and `skip`. Skip is
illegal where a layer changes the shape (stride 2 or new width): there the table masks
it (6 layers), so the space has 9^16 x 8^6 architectures at width 1.0.
"""

from __future__ import annotations

from profiler.ops import OpSpec
from searchers.spaces._chain import ChainSpace
from searchers.spaces._registry import register_space
from searchers.spaces.base import Choice, Layer

STAGES = ((16, 1, 1), (24, 4, 2), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))
# (name, kernel, expansion, groups) in the paper's order
BLOCKS = (
    ("ir_k3_e1", 3, 1, 1),
    ("ir_k3_e1_g2", 3, 1, 2),
    ("ir_k3_e3", 3, 3, 1),
    ("ir_k3_e6", 3, 6, 1),
    ("ir_k5_e1", 5, 1, 1),
    ("ir_k5_e1_g2", 5, 1, 2),
    ("ir_k5_e3", 5, 3, 1),
    ("ir_k5_e6", 5, 6, 1),
)


@register_space
class FBNet(ChainSpace):
    name = "fbnet"
    candidates = (*(b[0] for b in BLOCKS), "skip")
    description = "FBNet space: 22 layers x 9 blocks (skip masked where the shape changes)"

    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        n, r, dt = self.batch, self.resolution, self.dtype
        c_stem = self.width_of(16)
        stem = OpSpec.make("conv", (n, 3, r, r), dt, cin=3, cout=c_stem, k=3, s=2)
        h, cin = stem.out_shape[2], c_stem
        layers: list[Layer] = []
        for c, repeats, stride in STAGES:
            cout = self.width_of(c)
            for i in range(repeats):
                s = stride if i == 0 else 1
                res = int(s == 1 and cin == cout)
                shape = (n, cin, h, h)
                choices = [
                    Choice(
                        name,
                        OpSpec.make(
                            "mbconv",
                            shape,
                            dt,
                            cin=cin,
                            cout=cout,
                            e=e,
                            g=g,
                            k=k,
                            s=s,
                            res=res,
                            act="relu",
                        ),
                    )
                    for name, k, e, g in BLOCKS
                ]
                skip = OpSpec.make("skip", shape, dt, cin=cin, cout=cout, s=1) if res else None
                layers.append(Layer(f"tbs{len(layers) + 1}", (*choices, Choice("skip", skip))))
                h, cin = choices[0].op.out_shape[2], cout  # type: ignore[union-attr]
        head = OpSpec.make(
            "head", (n, cin, h, h), dt, cin=cin, cmid=self.width_of(1984), cout=self.classes
        )
        return [stem, head], layers
