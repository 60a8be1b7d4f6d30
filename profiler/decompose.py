"""A block's convolutions as standalone `conv` ops: nn-Meter's kernel-level view.

A block's latency on a CPU is mostly the sum of its convolutions, and a convolution has
far fewer parameters than the block around it (a 1x1 conv: channels in and out, side,
groups; a depthwise conv: channels, side, kernel, stride). Measured alone, the kernels
train a predictor of their own; a block's predictor then starts from the sum of its
kernels' estimates and learns only what the block adds (reorders, SE, the residual,
activations that stay in cache between kernels).

Each conv op here is exactly the module `profiler.blocks` builds for that part of the
block (same channels, groups, kernel, stride, activation, BN folded at export), on the
input shape it sees inside the block.
"""

from __future__ import annotations

from collections.abc import Callable

from profiler._kinds import spatial
from profiler.ops import OpSpec


def _conv(shape: tuple[int, int, int, int], dtype: str, **p: int | str) -> OpSpec:
    return OpSpec.make("conv", shape, dtype, bn=1, preact=0, **p)


def _mbconv(spec: OpSpec) -> list[OpSpec | None]:
    """[1x1 expand (groups g)], k x k depthwise (stride s), 1x1 project (no activation),
    as `blocks.MBConv` builds them; SE, the channel shuffle and the residual stay out."""
    n, cin, h, w = spec.shape
    cout, k, s, g = (spec.num(name) for name in ("cout", "k", "s", "g"))
    act, mid, dt = str(spec.p["act"]), cin * spec.num("e"), spec.dtype
    expand = None
    if mid != cin or g > 1 or spec.p["pw"]:  # skipped only at e=1, g=1 without pw
        expand = _conv((n, cin, h, w), dt, cin=cin, cout=mid, k=1, s=1, g=g, act=act)
    dw = _conv((n, mid, h, w), dt, cin=mid, cout=mid, k=k, s=s, g=mid, act=act)
    ho, wo = spatial(h, k, s), spatial(w, k, s)
    project = _conv((n, mid, ho, wo), dt, cin=mid, cout=cout, k=1, s=1, g=g, act="none")
    return [expand, dw, project]


DECOMPOSERS: dict[str, Callable[[OpSpec], list[OpSpec | None]]] = {"mbconv": _mbconv}
SLOTS = {"mbconv": 3}  # kernel slots per block, in forward order (None: not in this one)


def can_decompose(kind: str) -> bool:
    return kind in DECOMPOSERS


def conv_slots(spec: OpSpec) -> list[OpSpec | None]:
    """The block's kernel slots in forward order: a `conv` op, or None where this block
    has no such kernel (the same slots for every block of a kind)."""
    if spec.kind not in DECOMPOSERS:
        raise ValueError(
            f"kind: no kernel decomposition for {spec.kind!r} "
            f"(decomposed: {', '.join(DECOMPOSERS)})"
        )
    return DECOMPOSERS[spec.kind](spec)


def conv_ops(spec: OpSpec) -> list[OpSpec]:
    """The block's convolutions in forward order, as standalone `conv` ops."""
    return [c for c in conv_slots(spec) if c is not None]
