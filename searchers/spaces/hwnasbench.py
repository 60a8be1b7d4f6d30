"""HW-NAS-Bench's FBNet space for CIFAR-100 (`FBNet_Infer` in hw_nas_bench_api): 22 layers x 9.

Stem ConvNorm 3->16 k3 at stride 1 (CIFAR keeps the 32x32 input); searchable layers with
channels 16, 24, 32, 64, 112, 184, 352, repeats 1, 4, 4, 4, 4, 4, 1 and first strides
1, 1, 2, 2, 1, 2, 1; then ConvNorm 352->1504 k1, global pool and a classifier to 100.
Candidates in HW-NAS-Bench's order (an architecture there is 22 indices into it):
ConvBlocks k{3,5}_e{1,3,6} and k{3,5}_e1_g2 (ReLU, residual iff stride 1 and cin ==
cout), and `skip`. Unlike hwlat's `fbnet` space, two things follow HW-NAS-Bench's code:
its ConvBlock keeps the 1x1 expansion at e=1 (`pw=1`), and `skip` is legal on every
layer: the identity where the shape is kept, else a 1x1 conv + BN + ReLU at the layer's
stride. So 9^22 architectures, and the latencies of HW-NAS-Bench's tables
(`hwnasbench-fbnet` format) are the ops of this space one to one.
"""

from __future__ import annotations

from profiler.ops import OpSpec
from searchers.spaces._chain import ChainSpace
from searchers.spaces._registry import register_space
from searchers.spaces.base import Choice, Layer

STAGES = ((16, 1, 1), (24, 4, 1), (32, 4, 2), (64, 4, 2), (112, 4, 1), (184, 4, 2), (352, 1, 1))
# (name, kernel, expansion, groups) in HW-NAS-Bench's op order (indices 0..7; 8 is skip)
BLOCKS = (
    ("k3_e1", 3, 1, 1),
    ("k3_e1_g2", 3, 1, 2),
    ("k3_e3", 3, 3, 1),
    ("k3_e6", 3, 6, 1),
    ("k5_e1", 5, 1, 1),
    ("k5_e1_g2", 5, 1, 2),
    ("k5_e3", 5, 3, 1),
    ("k5_e6", 5, 6, 1),
)
HEAD = 1504  # CIFAR header width (ImageNet's is 1984)


@register_space
class HwNasBenchFbnet(ChainSpace):
    name = "hwnasbench-fbnet"
    candidates = (*(b[0] for b in BLOCKS), "skip")
    default_resolution = 32
    default_classes = 100
    description = "HW-NAS-Bench's FBNet (CIFAR-100): 22 layers x 9 ops, skip legal everywhere"

    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        n, r, dt = self.batch, self.resolution, self.dtype
        c_stem = self.width_of(16)
        stem = OpSpec.make("conv", (n, 3, r, r), dt, cin=3, cout=c_stem, k=3, s=1)
        h, cin = stem.out_shape[2], c_stem
        layers: list[Layer] = []
        for c, repeats, stride in STAGES:
            cout = self.width_of(c)
            for i in range(repeats):
                s = stride if i == 0 else 1
                shape = (n, cin, h, h)
                choices = [
                    Choice(name, self._block(shape, cout, k, e, g, s)) for name, k, e, g in BLOCKS
                ]
                layers.append(
                    Layer(
                        f"layer{len(layers)}",
                        (*choices, Choice("skip", self._skip(shape, cout, s))),
                    )
                )
                h, cin = choices[0].op.out_shape[2], cout  # type: ignore[union-attr]
        head = OpSpec.make(
            "head", (n, cin, h, h), dt, cin=cin, cmid=self.width_of(HEAD), cout=self.classes
        )
        return [stem, head], layers

    def _block(self, shape: tuple[int, ...], cout: int, k: int, e: int, g: int, s: int) -> OpSpec:
        cin = shape[1]
        return OpSpec.make(
            "mbconv",
            shape,
            self.dtype,
            cin=cin,
            cout=cout,
            e=e,
            g=g,
            k=k,
            s=s,
            act="relu",
            res=int(s == 1 and cin == cout),
            pw=int(e == 1 and g == 1),  # ConvBlock keeps its 1x1 expansion at e=1
        )

    def _skip(self, shape: tuple[int, ...], cout: int, s: int) -> OpSpec:
        """HW-NAS-Bench's Skip: the identity if the shape is kept, else 1x1 conv+BN+ReLU."""
        cin = shape[1]
        if s == 1 and cin == cout:
            return OpSpec.make("skip", shape, self.dtype, cin=cin, cout=cout, s=1)
        return OpSpec.make("conv", shape, self.dtype, cin=cin, cout=cout, k=1, s=s, act="relu")
