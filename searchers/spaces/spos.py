"""SPOS ShuffleNetV2 space (Guo et al., 2019): 20 choice blocks x 4 candidates.

Stem 3x3 conv 16 (stride 2); four stages of 4, 4, 8, 4 choice blocks with 64, 160,
320, 640 channels, the first block of each stage with stride 2; then a 1x1 conv to
1024, global pool and classifier. Candidates: ShuffleNetV2 units with k 3, 5, 7 and
the Xception-like unit.

Channel search (`channels=N`, N in 1..20; SPOS's "channel number search"): each choice
also sets the bottleneck (`mid`) width of its unit's main branch to scale 2i/N of the
default cout / 2, i = 1..N (N = 10: 0.2, 0.4, ..., 2.0, as SPOS). The candidate axis is
every op x every scale, op-major: `shuffle3_c0.2`, `shuffle3_c0.4`, ..., `xception_c2.0`
(two decimals when a scale needs them, i.e. N does not divide 20: `shuffle3_c0.67`).
Only the mid width is searched, not a block's output width: inputs and outputs of the
blocks stay fixed, so a block's latency depends on its own choice alone and the latency
table stays a sum over layers (choosing the output width would make each block's cost
depend on the previous block's choice). A scale that lands on the default width is the
default op (`mid=0`), so it shares its key, and its measurement, with `channels=0`.
"""

from __future__ import annotations

from typing import Any

from profiler.ops import OpSpec
from searchers.spaces._chain import ChainSpace
from searchers.spaces._registry import register_space
from searchers.spaces.base import ArchError, Choice, Layer

STAGES = ((64, 4), (160, 4), (320, 8), (640, 4))
OPS: tuple[str, ...] = ("shuffle3", "shuffle5", "shuffle7", "xception")
MAX_CHANNELS = 20  # scale steps of 0.1 at most: beyond that neighbours round to one width


def scale_names(n: int) -> list[str]:
    """The N scales 2i/N as written in candidate names: one decimal where every scale
    has one (N divides 20), else two, so names stay unique and sort like the scales."""
    digits = 1 if 20 % n == 0 else 2
    return [f"{2 * i / n:.{digits}f}" for i in range(1, n + 1)]


def scaled_mid(base: int, i: int, n: int) -> int:
    """Scale 2i/N of the default mid `base`, rounded half up, at least 1 (integer maths:
    no float ties)."""
    return max(1, (2 * i * base + n // 2) // n)


@register_space
class SposShuffleNet(ChainSpace):
    name = "spos-shufflenet"
    candidates = OPS  # channels=0's; an instance with channel search has its own
    description = "SPOS ShuffleNetV2 space: 20 choice blocks x 4 candidates (x N widths)"

    def __init__(
        self,
        resolution: int | None = None,
        width: float = 1.0,
        classes: int | None = None,
        batch: int = 1,
        dtype: str = "float32",
        channels: int = 0,
    ):
        if isinstance(channels, bool) or not isinstance(channels, int):
            raise ValueError(f"channels: must be an integer, got {channels!r}")
        if not 0 <= channels <= MAX_CHANNELS:
            raise ValueError(
                f"channels: 0 (no channel search) to {MAX_CHANNELS} width choices, got {channels}"
            )
        self.channels = channels
        if channels:  # everything reads the axis from the instance (tables, supernets)
            scales = scale_names(channels)
            axis = tuple(f"{op}_c{s}" for op in OPS for s in scales)
            self.candidates = axis  # type: ignore[misc]  # a ClassVar: other axes are fixed
        super().__init__(resolution, width, classes, batch, dtype)

    def _plan(self) -> tuple[list[OpSpec], list[Layer]]:
        n, r, dt = self.batch, self.resolution, self.dtype
        c_stem = self.width_of(16)
        stem = OpSpec.make("conv", (n, 3, r, r), dt, cin=3, cout=c_stem, k=3, s=2)
        h, cin = stem.out_shape[2], c_stem
        layers: list[Layer] = []
        for stage, (c, repeats) in enumerate(STAGES):
            cout = self.width_of(c)
            for i in range(repeats):
                shape = (n, cin, h, h)
                ops = [
                    OpSpec.make("shuffle", shape, dt, cin=cin, cout=cout, k=k, s=2 if i == 0 else 1)
                    for k in (3, 5, 7)
                ]
                s = ops[0].num("s")
                ops.append(OpSpec.make("xception", shape, dt, cin=cin, cout=cout, s=s))
                name = f"stage{stage + 1}.block{i + 1}"
                layers.append(Layer(name, self._choices(ops)))
                h, cin = ops[0].out_shape[2], cout
        head = OpSpec.make(
            "head", (n, cin, h, h), dt, cin=cin, cmid=self.width_of(1024), cout=self.classes
        )
        return [stem, head], layers

    def _choices(self, ops: list[OpSpec]) -> tuple[Choice, ...]:
        """One choice per op (channels=0), or per op and width scale."""
        if not self.channels:
            return tuple(Choice(name, op) for name, op in zip(OPS, ops, strict=True))
        n, names = self.channels, iter(self.candidates)
        out = []
        for op in ops:
            base = op.num("cout") // 2
            for i in range(1, n + 1):
                mid = scaled_mid(base, i, n)
                out.append(Choice(next(names), op.replace(mid=0 if mid == base else mid)))
        return tuple(out)

    # --- architectures -------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        extra = {"channels": self.channels} if self.channels else {}
        return {**super().params(), **extra}

    def parse_arch(self, data: Any) -> tuple[str, ...]:
        # ChainSpace knows the base fields only; `channels` is checked here and dropped
        if isinstance(data, dict) and "channels" in data:
            if data["channels"] != self.channels:
                raise ArchError(
                    f"channels: architecture is for {data['channels']!r}, "
                    f"this space has {self.channels!r}"
                )
            data = {k: v for k, v in data.items() if k != "channels"}
        return super().parse_arch(data)
