"""Random block configurations to train latency predictors on.

The priors cover the bundled search spaces and the space around them, not only their
exact points: channels from 8 to 640 (log-uniform, rounded to multiples of 8, as
width multipliers produce), feature maps from 1 to 112, every kernel, expansion,
stride, group and activation a space uses. Invalid combinations are redrawn.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from profiler.ops import OpSpec

SIDES = (1, 2, 4, 7, 8, 14, 16, 28, 32, 56, 64, 112)
Draw = Callable[[random.Random], OpSpec]


def channels(rng: random.Random, lo: int = 8, hi: int = 640) -> int:
    """Log-uniform in [lo, hi], rounded to a multiple of 8 (the make_divisible grid)."""
    c = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return max(8, round(c / 8) * 8)


def _side(rng: random.Random) -> int:
    return rng.choice(SIDES)


def _mbconv(rng: random.Random) -> OpSpec:
    cin, s = channels(rng), rng.choice((1, 2))
    cout = cin if s == 1 and rng.random() < 0.4 else channels(rng)
    h = _side(rng)
    return OpSpec.make(
        "mbconv",
        (1, cin, h, h),
        cin=cin,
        cout=cout,
        e=rng.choice((1, 3, 4, 6)),
        k=rng.choice((3, 5, 7)),
        s=s,
        g=rng.choice((1, 1, 2)),
        se=rng.choice((0, 0, 1)),
        act=rng.choice(("relu", "relu6", "hswish")),
        res=int(s == 1 and cin == cout and rng.random() < 0.8),
    )


def _shuffle(rng: random.Random) -> OpSpec:
    s, h = rng.choice((1, 2)), _side(rng)
    cin = channels(rng, 16, 640)
    cout = cin if s == 1 else cin + channels(rng, 8, 640)
    kind = rng.choice(("shuffle", "shuffle", "xception"))
    extra = {"k": rng.choice((3, 5, 7))} if kind == "shuffle" else {}
    return OpSpec.make(kind, (1, cin, h, h), "float32", cin=cin, cout=cout, s=s, **extra)


def _darts(kind: str) -> Draw:
    def draw(rng: random.Random) -> OpSpec:
        c, h = channels(rng, 8, 256), _side(rng)
        return OpSpec.make(kind, (1, c, h, h), c=c, k=rng.choice((3, 5)), s=rng.choice((1, 2)))

    return draw


def _conv(rng: random.Random) -> OpSpec:
    cin, cout, h = channels(rng, 8, 1024), channels(rng, 8, 2048), _side(rng)
    return OpSpec.make(
        "conv",
        (1, cin, h, h),
        cin=cin,
        cout=cout,
        k=rng.choice((1, 1, 3)),
        s=rng.choice((1, 2)),
        act=rng.choice(("relu", "relu6", "none")),
    )


DRAWS: dict[str, Draw] = {
    "mbconv": _mbconv,
    "shuffle": _shuffle,
    "sep_conv": _darts("sep_conv"),
    "dil_conv": _darts("dil_conv"),
    "conv": _conv,
}


def sample_ops(kind: str, n: int, seed: int = 0, dtype: str = "float32") -> list[OpSpec]:
    """`n` distinct valid configurations of `kind` (shuffle also yields xception units)."""
    if kind not in DRAWS:
        raise ValueError(f"kind: no sampler for {kind!r} (samplers: {', '.join(DRAWS)})")
    if not 1 <= n <= 100_000:
        raise ValueError(f"n: between 1 and 100000, got {n}")
    rng, out = random.Random(seed), dict[str, OpSpec]()
    for _ in range(n * 50):
        try:
            spec = DRAWS[kind](rng)
        except ValueError:
            continue  # an invalid combination: draw again
        if dtype != "float32":
            spec = spec.replace(dtype=dtype)
        out.setdefault(spec.key, spec)
        if len(out) == n:
            break
    return list(out.values())
