"""Hypothesis strategies and hand-written examples of valid OpSpecs, shared by the tests.

`valid_specs()` draws a legal spec of any kind in KINDS (or of the kinds asked for); each
kind has its own strategy that builds parameters satisfying that kind's rules. Sizes stay
small (channels <= 64, H, W <= 40, batch <= 4) so building and running the block is cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import strategies as st

from profiler._kinds import ACTS, KINDS, POOL_MODES
from profiler.ops import DTYPES, OpSpec

Draw = Callable[[st.SearchStrategy], Any]
Drawn = tuple[dict[str, Any], int, st.SearchStrategy[int]]  # params, channels, H and W

batch = st.integers(1, 4)
side = st.integers(1, 40)
even_side = st.integers(1, 20).map(lambda v: 2 * v)
odd_k = st.sampled_from((1, 3, 5, 7))
stride12 = st.sampled_from((1, 2))
acts = st.sampled_from(ACTS)


def _conv(draw: Draw) -> Drawn:
    g = draw(st.sampled_from((1, 2, 4)))
    cin, cout = g * draw(st.integers(1, 16)), g * draw(st.integers(1, 16))
    params = {"cin": cin, "cout": cout, "k": draw(odd_k), "s": draw(st.integers(1, 3)), "g": g}
    params |= {"bn": draw(st.sampled_from((0, 1))), "act": draw(acts)}
    params["preact"] = draw(st.sampled_from((0, 1)))
    return params, cin, side


def _mbconv(draw: Draw) -> Drawn:
    g = draw(st.sampled_from((1, 2)))
    cin = g * draw(st.integers(1, 16))
    s = draw(stride12)
    res = 1 if s == 1 and draw(st.booleans()) else 0
    cout = cin if res else g * draw(st.integers(1, 16))
    e = draw(st.integers(1, 6))
    params = {"cin": cin, "cout": cout, "e": e, "g": g, "k": draw(odd_k)}
    params |= {"s": s, "se": draw(st.sampled_from((0, 1))), "act": draw(acts), "res": res}
    if e == 1 and g == 1 and draw(st.booleans()):
        params["pw"] = 1  # the e1 block that keeps its expansion (HW-NAS-Bench's ConvBlock)
    return params, cin, st.integers(1, 24)


def _shuffle_channels(draw: Draw, s: int) -> tuple[int, int]:
    if s == 1:
        c = 2 * draw(st.integers(1, 32))
        return c, c
    cin = draw(st.integers(1, 62))
    return cin, 2 * draw(st.integers(cin // 2 + 1, 32))


def _shuffle(draw: Draw) -> Drawn:
    s = draw(stride12)
    cin, cout = _shuffle_channels(draw, s)
    params = {"cin": cin, "cout": cout, "k": draw(st.sampled_from((3, 5, 7))), "s": s}
    return params, cin, side


def _xception(draw: Draw) -> Drawn:
    s = draw(stride12)
    cin, cout = _shuffle_channels(draw, s)
    return {"cin": cin, "cout": cout, "s": s}, cin, side


def _darts_conv(kind: str) -> Callable[[Draw], Drawn]:
    def draw_params(draw: Draw) -> Drawn:
        c = draw(st.integers(1, 64))
        params = {"c": c, "k": draw(st.sampled_from((3, 5))), "s": draw(stride12)}
        if kind == "dil_conv":
            params["d"] = draw(st.integers(1, 3))
        return params, c, side

    return draw_params


def _pool(draw: Draw) -> Drawn:
    c = draw(st.integers(1, 64))
    params = {"c": c, "k": draw(odd_k), "mode": draw(st.sampled_from(POOL_MODES))}
    return params | {"s": draw(stride12)}, c, side


def _skip(draw: Draw) -> Drawn:
    s = draw(stride12)
    cin = draw(st.integers(1, 64))
    cout = cin if s == 1 else 2 * draw(st.integers(1, 32))
    return {"cin": cin, "cout": cout, "s": s}, cin, side if s == 1 else even_side


def _zero(draw: Draw) -> Drawn:
    c = draw(st.integers(1, 64))
    return {"c": c, "s": draw(stride12)}, c, side


def _linear(draw: Draw) -> Drawn:
    cin = draw(st.integers(1, 64))
    return {"cin": cin, "cout": draw(st.integers(1, 64))}, cin, st.just(1)


def _head(draw: Draw) -> Drawn:
    cin = draw(st.integers(1, 64))
    params = {"cin": cin, "cmid": draw(st.integers(0, 64)), "cout": draw(st.integers(1, 64))}
    return params | {"act": draw(acts)}, cin, side


_PARAMS: dict[str, Callable[[Draw], Drawn]] = {
    "conv": _conv,
    "mbconv": _mbconv,
    "shuffle": _shuffle,
    "xception": _xception,
    "sep_conv": _darts_conv("sep_conv"),
    "dil_conv": _darts_conv("dil_conv"),
    "pool": _pool,
    "skip": _skip,
    "zero": _zero,
    "linear": _linear,
    "head": _head,
}
assert set(_PARAMS) == set(KINDS), "a kind in KINDS has no strategy in tests/profiler"


@st.composite
def valid_specs(
    draw: Draw, kinds: Iterable[str] = tuple(KINDS), dtypes: Iterable[str] = DTYPES
) -> OpSpec:
    """A valid OpSpec of one of `kinds`, with a dtype from `dtypes`."""
    kind = draw(st.sampled_from(sorted(kinds)))
    params, c, sides = _PARAMS[kind](draw)
    shape = (draw(batch), c, draw(sides), draw(sides))
    return OpSpec.make(kind, shape, draw(st.sampled_from(tuple(dtypes))), **params)


def mk(
    kind: str, c: int, hw: int = 8, /, dtype: str = "float32", n: int = 1, **params: Any
) -> OpSpec:
    """A spec with a (n, c, hw, hw) input."""
    return OpSpec.make(kind, (n, c, hw, hw), dtype, **params)


EXAMPLES: list[OpSpec] = [
    mk("conv", 3, 16, cin=3, cout=16, k=3, s=2),
    mk("conv", 8, cin=8, cout=8, k=3, s=1, preact=1),
    mk("conv", 8, cin=8, cout=12, k=1, s=1, bn=0, act="none"),
    mk("conv", 8, 9, cin=8, cout=16, k=5, s=3, g=4, act="swish"),
    mk("mbconv", 16, 32, cin=16, cout=24, e=6, k=3, s=2),
    mk("mbconv", 16, cin=16, cout=16, e=3, k=5, s=1, res=1),
    mk("mbconv", 16, cin=16, cout=24, e=4, k=3, s=1, se=1, act="hswish"),
    mk("mbconv", 8, n=2, cin=8, cout=16, e=1, k=3, s=2),
    mk("mbconv", 8, cin=8, cout=8, e=1, k=5, s=1, g=2, res=1),
    mk("mbconv", 8, 7, cin=8, cout=12, e=3, k=7, s=2, g=2, se=1, act="swish"),
    *(mk("shuffle", 16, cin=16, cout=16, k=k, s=1) for k in (3, 5, 7)),
    *(mk("shuffle", 8, 9, cin=8, cout=24, k=k, s=2) for k in (3, 5, 7)),
    mk("xception", 16, cin=16, cout=16, s=1),
    mk("xception", 12, 7, cin=12, cout=32, s=2),
    *(
        mk(kind, 6, 9, c=6, k=k, s=s)
        for kind in ("sep_conv", "dil_conv")
        for k in (3, 5)
        for s in (1, 2)
    ),
    mk("dil_conv", 4, c=4, k=3, s=1, d=3),
    *(mk("pool", 5, 9, c=5, k=3, mode=m, s=s) for m in POOL_MODES for s in (1, 2)),
    mk("skip", 8, 7, cin=8, cout=8, s=1),
    mk("skip", 8, n=2, cin=8, cout=16, s=2),
    mk("zero", 4, 9, c=4, s=1),
    mk("zero", 4, 9, c=4, s=2),
    mk("linear", 32, 1, n=3, cin=32, cout=10),
    mk("head", 16, 7, cin=16, cout=10),
    mk("head", 16, 7, n=2, cin=16, cmid=32, cout=10, act="hswish"),
]
