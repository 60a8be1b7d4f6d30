"""Random block configurations to train latency predictors on.

The priors cover the bundled search spaces and the space around them, not only their
exact points: channels from 8 to 640 (log-uniform, rounded to multiples of 8, as
width multipliers produce), feature maps from 1 to 112, every kernel, expansion,
stride, group and activation a space uses. Invalid combinations are redrawn.
With `kernels=True` the samples are `conv` ops instead: the convolutions of random
blocks of the kind (one each), measured alone as kernel-level training data.

`refine_ops` adds samples near given ops (those a trained predictor gets most wrong):
each new one is one of them with one or two parameters moved to a neighbouring value.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Sequence

from profiler._kinds import Scalar
from profiler.decompose import conv_ops
from profiler.ops import OpSpec

SIDES = (1, 2, 4, 7, 8, 14, 16, 28, 32, 56, 64, 112)
Draw = Callable[[random.Random], OpSpec]
KERNELS = (3, 5, 7)
STRIDES = (1, 2)
MB_EXPANSIONS = (1, 3, 4, 6)
MB_ACTS = ("relu", "relu6", "hswish")
DARTS_KERNELS = (3, 5)
CONV_ACTS = ("relu", "relu6", "none")


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
        e=rng.choice(MB_EXPANSIONS),
        k=rng.choice(KERNELS),
        s=s,
        g=rng.choice((1, 1, 2)),
        se=rng.choice((0, 0, 1)),
        act=rng.choice(MB_ACTS),
        res=int(s == 1 and cin == cout and rng.random() < 0.8),
    )


def _shuffle(rng: random.Random) -> OpSpec:
    s, h = rng.choice((1, 2)), _side(rng)
    cin = channels(rng, 16, 640)
    cout = cin if s == 1 else cin + channels(rng, 8, 640)
    kind = rng.choice(("shuffle", "shuffle", "xception"))
    extra = {"k": rng.choice(KERNELS)} if kind == "shuffle" else {}
    return OpSpec.make(kind, (1, cin, h, h), "float32", cin=cin, cout=cout, s=s, **extra)


def _darts(kind: str) -> Draw:
    def draw(rng: random.Random) -> OpSpec:
        c, h = channels(rng, 8, 256), _side(rng)
        return OpSpec.make(
            kind, (1, c, h, h), c=c, k=rng.choice(DARTS_KERNELS), s=rng.choice(STRIDES)
        )

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
        act=rng.choice(CONV_ACTS),
    )


def _kernel_of(block: Draw) -> Draw:
    """One convolution (e.g. 1x1 expand, depthwise or 1x1 project) of a random block:
    kernel-level training data, measured alone (`profiler.decompose`)."""
    return lambda rng: rng.choice(conv_ops(block(rng)))


DRAWS: dict[str, Draw] = {
    "mbconv": _mbconv,
    "shuffle": _shuffle,
    "sep_conv": _darts("sep_conv"),
    "dil_conv": _darts("dil_conv"),
    "conv": _conv,
}


# the kinds whose blocks decompose into convolutions that can be measured alone
KERNEL_DRAWS: dict[str, Draw] = {"mbconv": _kernel_of(_mbconv)}


def sample_ops(
    kind: str, n: int, seed: int = 0, dtype: str = "float32", kernels: bool = False
) -> list[OpSpec]:
    """`n` distinct valid configurations of `kind` (shuffle also yields xception units);
    with `kernels`, `n` convolutions of random blocks of `kind` instead."""
    draws = KERNEL_DRAWS if kernels else DRAWS
    if kind not in draws:
        what = "kernel sampler" if kernels else "sampler"
        raise ValueError(f"kind: no {what} for {kind!r} (known: {', '.join(draws)})")
    if not 1 <= n <= 100_000:
        raise ValueError(f"n: between 1 and 100000, got {n}")
    rng, out = random.Random(seed), dict[str, OpSpec]()
    for _ in range(n * 50):
        try:
            spec = draws[kind](rng)
        except ValueError:
            continue  # an invalid combination: draw again
        if dtype != "float32":
            spec = spec.replace(dtype=dtype)
        out.setdefault(spec.key, spec)
        if len(out) == n:
            break
    return list(out.values())


# --- adaptive refinement: more samples where a predictor is most wrong ------------------
# The values each kind's categorical parameters may move to (the priors' own sets).
MOVES: dict[str, dict[str, tuple[Scalar, ...]]] = {
    "mbconv": {
        "e": MB_EXPANSIONS,
        "k": KERNELS,
        "s": STRIDES,
        "g": (1, 2),
        "se": (0, 1),
        "act": MB_ACTS,
        "res": (0, 1),
    },
    "shuffle": {"k": KERNELS, "s": STRIDES},
    "xception": {"s": STRIDES},
    "sep_conv": {"k": DARTS_KERNELS, "s": STRIDES},
    "dil_conv": {"k": DARTS_KERNELS, "s": STRIDES},
    "conv": {"k": (1, 3), "s": STRIDES, "act": CONV_ACTS},
}
FAMILY = {"shuffle": ("shuffle", "xception")}  # refining "shuffle" also takes xception ops
CHANNEL_STEP = math.log(1.25)  # channel moves: within about ±25% (log scale)
PATIENCE = 500  # draws in a row without a new op before a seed counts as used up


def near_channels(rng: random.Random, c: int) -> int:
    """A different channel count within about ±25% of `c`, on the multiple-of-8 grid."""
    step = rng.uniform(-CHANNEL_STEP, CHANNEL_STEP)
    new = max(8, round(c * math.exp(step) / 8) * 8)
    if new == c:  # rounded back: one grid step in the drawn direction (up from the floor)
        new = c + 8 if step >= 0 or c <= 8 else c - 8
    return new


def near_side(rng: random.Random, h: int) -> int:
    """The next smaller or larger side in SIDES (the nearest ones when h is not there)."""
    i = bisect.bisect_left(SIDES, h)
    below = SIDES[i - 1 : i]
    above = SIDES[i + 1 : i + 2] if i < len(SIDES) and SIDES[i] == h else SIDES[i : i + 1]
    return rng.choice(below + above)


def _axes(spec: OpSpec) -> list[tuple[str, int]]:
    """(axis, how many parameters moving it changes) of one op."""
    p = spec.p
    axes = [("side", 1)] + [(c, 1) for c in ("cin", "cout", "c") if c in p]
    if "cin" in p and p["cin"] == p["cout"]:
        axes.append(("width", 2))  # cin and cout together: keeps residuals, stride-1 units
    return axes + [(name, 1) for name in MOVES[spec.kind] if name in p]


def _move(rng: random.Random, spec: OpSpec, axis: str, p: dict[str, Scalar]) -> int | None:
    """Apply one move to the params `p`; returns the new side for the 'side' axis."""
    if axis == "side":
        return near_side(rng, spec.shape[2])
    if axis == "width":
        p["cin"] = p["cout"] = near_channels(rng, spec.num("cin"))
    elif axis in ("cin", "cout", "c"):
        p[axis] = near_channels(rng, spec.num(axis))
    else:
        p[axis] = rng.choice([v for v in MOVES[spec.kind][axis] if v != p[axis]])
    return None


def perturb(rng: random.Random, spec: OpSpec, dtype: str | None = None) -> OpSpec:
    """`spec` with 1 or 2 of its parameters (the input side counts as one) moved to a
    neighbouring value. Raises ValueError for an invalid combination (draw again)."""
    budget, p, side, axes = rng.choice((1, 2)), spec.p, spec.shape[2], _axes(spec)
    for axis, cost in rng.sample(axes, len(axes)):
        if cost <= budget:
            side = _move(rng, spec, axis, p) or side
            budget -= cost
        if budget == 0:
            break
    n, c = spec.shape[0], int(p["c"] if "c" in p else p["cin"])
    h, w = (side, side) if side != spec.shape[2] else spec.shape[2:]
    return OpSpec.make(spec.kind, (n, c, h, w), dtype or spec.dtype, **p)


def _quotas(m: int, n: int, weights: Sequence[float] | None) -> list[int]:
    """n split over m seeds: equally (earlier seeds first), or in proportion to weights
    (largest remainders first)."""
    if weights is None or not sum(weights) > 0:
        return [n // m + (i < n % m) for i in range(m)]
    total = sum(weights)
    exact = [n * w / total for w in weights]
    out = [math.floor(x) for x in exact]
    by_remainder = sorted(range(m), key=lambda i: (out[i] - exact[i], i))
    for i in by_remainder[: n - sum(out)]:
        out[i] += 1
    return out


def _check_refine(
    kind: str, worst: Sequence[OpSpec], n: int, weights: Sequence[float] | None
) -> None:
    if kind not in MOVES:
        raise ValueError(f"kind: cannot refine {kind!r} (kinds: {', '.join(MOVES)})")
    if not 1 <= n <= 100_000:
        raise ValueError(f"n: between 1 and 100000, got {n}")
    if not worst:
        raise ValueError("worst: give at least one op to refine around")
    for i, op in enumerate(worst):
        if op.kind not in FAMILY.get(kind, (kind,)):
            raise ValueError(f"worst[{i}]: a {op.kind} op, not one of kind {kind!r}")
    if weights is not None and (
        len(weights) != len(worst) or not all(0 <= w < math.inf for w in weights)
    ):
        raise ValueError("weights: one finite, non-negative weight per worst op")


def refine_ops(
    kind: str,
    worst: Sequence[OpSpec],
    n: int,
    seed: int = 0,
    dtype: str | None = None,
    weights: Sequence[float] | None = None,
) -> list[OpSpec]:
    """Up to `n` distinct new valid configurations near the `worst` ops (those a
    predictor gets most wrong): each is one of them with 1-2 parameters moved (see
    `perturb`), never one of them. New ops are spread over the worst ones in proportion
    to `weights` (e.g. their errors), else equally; a seed whose neighbourhood runs out
    leaves its share to the others. `dtype` (default: each seed's) as in `sample_ops`."""
    _check_refine(kind, worst, n, weights)
    rng, out = random.Random(seed), dict[str, OpSpec]()
    taken = {op.key for op in worst} | {op.replace(dtype=dtype).key for op in worst if dtype}
    quotas = _quotas(len(worst), n, weights)
    for op, quota in zip(worst, quotas, strict=True):
        _grow(rng, [op], len(out) + quota, dtype, taken, out)
    _grow(rng, list(worst), n, dtype, taken, out)  # shares left by exhausted seeds
    return list(out.values())


def _grow(
    rng: random.Random,
    seeds: Sequence[OpSpec],
    target: int,
    dtype: str | None,
    taken: set[str],
    out: dict[str, OpSpec],
) -> None:
    """Add perturbations of `seeds` (round robin) to `out` until it holds `target` ops,
    or until PATIENCE draws in a row brought nothing new (the neighbourhood is used up)."""
    misses = 0
    for attempt in range(max(0, target - len(out)) * 50):
        if len(out) >= target or misses >= PATIENCE:
            return
        misses += 1
        try:
            spec = perturb(rng, seeds[attempt % len(seeds)], dtype)
        except ValueError:
            continue  # an invalid combination: draw again
        if spec.key not in taken and spec.key not in out:
            out[spec.key] = spec
            misses = 0
