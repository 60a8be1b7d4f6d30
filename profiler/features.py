"""Analytic features of a block, computed from its spec alone (no torch needed).

`flops` follows the convention of torch.utils.flop_counter and most NAS papers:
2 x multiply-accumulates of convolutions and matrix products; BN (folded at export),
activations, pooling and additions are not counted. `params` counts learnable
parameters (BN scale and shift included, running statistics not).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

from profiler._kinds import se_channels, spatial
from profiler.ops import OpSpec


@dataclass(frozen=True)
class Features:
    macs: int
    flops: int
    params: int
    input_bytes: int
    output_bytes: int
    weight_bytes: int
    arithmetic_intensity: float  # flops per byte moved (inputs + outputs + weights)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class Cost(NamedTuple):
    """One convolution kernel of a block: what a kernel-level predictor sums over."""

    macs: int
    params: int
    kernel: str  # "pw" 1x1 dense, "conv" kxk dense, "dw" depthwise, "gconv" grouped, "fc"
    out: int  # output activations (elements)
    cin: int = 0
    cout: int = 0
    g: int = 1
    inp: int = 0  # input activations (elements)
    after_nchw: bool = False  # an op that only runs in plain NCHW comes just before it
    branch: bool = False  # starts a second branch on the block's input (concatenated)
    k: int = 1  # kernel size (square)


def kernel_type(cin: int, cout: int, k: int, hw_out: int, g: int) -> str:
    if g > 1:
        return "dw" if g == cin == cout else "gconv"
    if hw_out == 1 and k == 1:
        return "fc"
    return "pw" if k == 1 else "conv"


def conv_cost(
    n: int,
    cin: int,
    cout: int,
    k: int,
    hw_out: int,
    g: int = 1,
    bn: bool = True,
    bias: bool = False,
    hw_in: int | None = None,
) -> Cost:
    """One k x k convolution producing hw_out positions per image (from hw_in, default
    hw_out: stride 1)."""
    weights = cout * (cin // g) * k * k
    extra = 2 * cout if bn else (cout if bias else 0)
    kind = kernel_type(cin, cout, k, hw_out, g)
    inp = n * (hw_out if hw_in is None else hw_in) * cin
    return Cost(
        n * hw_out * weights, weights + extra, kind, n * hw_out * cout, cin, cout, g, inp, k=k
    )


def _mbconv(spec: OpSpec) -> list[Cost]:
    n, _, h, w = spec.shape
    cin, cout, k, s, g = (spec.num(x) for x in ("cin", "cout", "k", "s", "g"))
    mid, out_hw = cin * spec.num("e"), spatial(h, k, s) * spatial(w, k, s)
    costs = []
    if mid != cin or g > 1 or spec.p["pw"]:  # as blocks.MBConv decides
        costs.append(conv_cost(n, cin, mid, 1, h * w, g))
    # the channel shuffle after a grouped expand is a reshape/transpose in plain NCHW
    dw = conv_cost(n, mid, mid, k, out_hw, mid, hw_in=h * w)
    costs.append(dw._replace(after_nchw=g > 1 and len(costs) > 0))
    se = bool(spec.p["se"])
    if se:  # squeeze (a mean over the map) and excite (a broadcast multiply): NCHW ops
        sm = se_channels(mid)
        costs += [
            conv_cost(n, mid, sm, 1, 1, bn=False, bias=True, hw_in=1)._replace(after_nchw=True),
            conv_cost(n, sm, mid, 1, 1, bn=False, bias=True),
        ]
    # (at a 1x1 map the multiply has equal shapes, and ORT keeps it in NCHWc)
    costs.append(conv_cost(n, mid, cout, 1, out_hw, g)._replace(after_nchw=se and out_hw > 1))
    return costs


def _shuffle(spec: OpSpec) -> list[Cost]:
    n, _, h, w = spec.shape
    xception = spec.kind == "xception"
    cin, cout, s = spec.num("cin"), spec.num("cout"), spec.num("s")
    k = 3 if xception else spec.num("k")
    inp = cin // 2 if s == 1 else cin
    mid = spec.num("mid") or cout // 2  # SPOS channel search sets it; 0: the default
    out, ohw = cout - inp, spatial(h, k, s) * spatial(w, k, s)
    if xception:
        costs = [
            conv_cost(n, inp, inp, 3, ohw, inp, hw_in=h * w),
            conv_cost(n, inp, mid, 1, ohw),
            conv_cost(n, mid, mid, 3, ohw, mid),
            conv_cost(n, mid, mid, 1, ohw),
            conv_cost(n, mid, mid, 3, ohw, mid),
            conv_cost(n, mid, out, 1, ohw),
        ]
    else:
        costs = [
            conv_cost(n, inp, mid, 1, h * w),
            conv_cost(n, mid, mid, k, ohw, mid, hw_in=h * w),
            conv_cost(n, mid, out, 1, ohw),
        ]
    if s == 2:
        side = conv_cost(n, cin, cin, k, ohw, cin, hw_in=h * w)._replace(branch=True)
        costs += [side, conv_cost(n, cin, cin, 1, ohw)]
    return costs


def _darts_conv(spec: OpSpec) -> list[Cost]:
    n, _, h, w = spec.shape
    c, k, s = spec.num("c"), spec.num("k"), spec.num("s")
    ohw = spatial(h, k, s) * spatial(w, k, s)
    one = [conv_cost(n, c, c, k, ohw, c, bn=False, hw_in=h * w), conv_cost(n, c, c, 1, ohw)]
    if spec.kind == "dil_conv":
        return one
    # the second half runs on the first's output: stride 1
    return [*one, conv_cost(n, c, c, k, ohw, c, bn=False), conv_cost(n, c, c, 1, ohw)]


def _conv(spec: OpSpec) -> list[Cost]:
    n, _, h, w = spec.shape
    k, s = spec.num("k"), spec.num("s")
    return [
        conv_cost(
            n,
            spec.num("cin"),
            spec.num("cout"),
            k,
            spatial(h, k, s) * spatial(w, k, s),
            spec.num("g"),
            bn=bool(spec.p["bn"]),
            bias=not spec.p["bn"],
            hw_in=h * w,
        )
    ]


def _skip(spec: OpSpec) -> list[Cost]:
    if spec.num("s") == 1:
        return []
    n, _, h, w = spec.shape
    half = conv_cost(n, spec.num("cin"), spec.num("cout") // 2, 1, (h // 2) * (w // 2), bn=False)
    bn = Cost(0, 2 * spec.num("cout"), "bn", 0)  # the BN after the concatenation
    return [half, half, bn]


def _head(spec: OpSpec) -> list[Cost]:
    n, cin, h, w = spec.shape
    cmid, classes = spec.num("cmid"), spec.num("cout")
    costs = [conv_cost(n, cin, cmid, 1, h * w)] if cmid else []
    return [*costs, conv_cost(n, cmid or cin, classes, 1, 1, bn=False, bias=True)]


_COSTS = {
    "conv": _conv,
    "mbconv": _mbconv,
    "shuffle": _shuffle,
    "xception": _shuffle,
    "sep_conv": _darts_conv,
    "dil_conv": _darts_conv,
    "pool": lambda spec: [],
    "zero": lambda spec: [],
    "skip": _skip,
    "linear": lambda spec: [
        conv_cost(spec.shape[0], spec.num("cin"), spec.num("cout"), 1, 1, bn=False, bias=True)
    ],
    "head": _head,
}


def kernels(spec: OpSpec) -> list[Cost]:
    """The convolution kernels of a block in forward order (elementwise ops left out)."""
    return _COSTS[spec.kind](spec)


def features(spec: OpSpec) -> Features:
    costs = kernels(spec)
    macs = sum(c.macs for c in costs)
    params = sum(c.params for c in costs)
    size = spec.itemsize
    in_bytes = _numel(spec.shape) * size
    out_bytes = _numel(spec.out_shape) * size
    weight_bytes = params * size
    moved = in_bytes + out_bytes + weight_bytes
    return Features(
        macs,
        2 * macs,
        params,
        in_bytes,
        out_bytes,
        weight_bytes,
        2 * macs / moved if moved else 0.0,
    )


def _numel(shape: tuple[int, ...]) -> int:
    total = 1
    for d in shape:
        total *= d
    return total
