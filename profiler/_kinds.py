"""What each op kind takes, which combinations are legal, and what shape it returns.

One `KindDef` per kind. The key format depends on the parameter tables below: a
parameter marked `always` is written in every key; an optional one only when it differs
from its default. Defaults are therefore frozen forever: changing one would silently
change the meaning of stored keys. Add a new optional parameter instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

Scalar = int | str
Shape = tuple[int, ...]

ACTS = ("none", "relu", "relu6", "hswish", "swish")
POOL_MODES = ("max", "avg")


@dataclass(frozen=True)
class Param:
    name: str
    type: type  # int or str
    default: Scalar | None = None  # None: required
    always: bool = True  # written in every key (else only when != default)
    choices: tuple[Scalar, ...] = ()
    minimum: int = 1  # for ints


@dataclass(frozen=True)
class KindDef:
    name: str
    params: tuple[Param, ...]
    check: Callable[[Mapping[str, Scalar], Shape], None]
    out_shape: Callable[[Mapping[str, Scalar], Shape], Shape]
    doc: str


def _i(name: str, default: int | None = None, *, always: bool = True, minimum: int = 1) -> Param:
    return Param(name, int, default, always, (), minimum)


def _c(name: str, choices: tuple[Scalar, ...], default: Scalar, *, always: bool = False) -> Param:
    return Param(name, type(choices[0]), default, always, choices)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor` without losing more than 10%
    (the MobileNet / ProxylessNAS / OFA rule, so widths match their reference code)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def se_channels(c: int) -> int:
    """Squeeze-and-excite bottleneck width: c / 4 rounded to 8 (MobileNetV3 / OFA)."""
    return make_divisible(c / 4, 8)


def spatial(h: int, k: int, s: int) -> int:
    """Output size of a 'same'-padded (pad = k // 2 · dilation) window of odd size k."""
    return (h - 1) // s + 1


def _fail(field: str, msg: str) -> None:
    raise ValueError(f"{field}: {msg}")


def _need(cond: bool, field: str, msg: str) -> None:
    if not cond:
        _fail(field, msg)


def _odd_k(p: Mapping[str, Scalar]) -> None:
    _need(int(p["k"]) % 2 == 1, "k", f"kernel size must be odd, got {p['k']}")


def _stride12(p: Mapping[str, Scalar]) -> None:
    _need(p["s"] in (1, 2), "s", f"stride must be 1 or 2, got {p['s']}")


def _cin_matches(p: Mapping[str, Scalar], shape: Shape, name: str = "cin") -> None:
    _need(shape[1] == p[name], "shape", f"input has {shape[1]} channels but {name}={p[name]}")


def _divides(g: int, n: int, field: str, what: str) -> None:
    _need(n % g == 0, field, f"groups={g} must divide {what}={n}")


# --- conv: k x k convolution (+ BN) (+ activation); `preact` puts the activation first
def _check_conv(p: Mapping[str, Scalar], shape: Shape) -> None:
    _cin_matches(p, shape)
    _odd_k(p)
    g = int(p["g"])
    _divides(g, int(p["cin"]), "g", "cin")
    _divides(g, int(p["cout"]), "g", "cout")


def _out_conv(p: Mapping[str, Scalar], shape: Shape) -> Shape:
    n, _, h, w = shape
    k, s = int(p["k"]), int(p["s"])
    return (n, int(p["cout"]), spatial(h, k, s), spatial(w, k, s))


# --- mbconv: MobileNetV2 inverted residual (1x1 expand, k x k depthwise, [SE], 1x1 project)
def _check_mbconv(p: Mapping[str, Scalar], shape: Shape) -> None:
    _cin_matches(p, shape)
    _odd_k(p)
    _stride12(p)
    g, cin, cout = int(p["g"]), int(p["cin"]), int(p["cout"])
    _divides(g, cin, "g", "cin")
    _divides(g, cout, "g", "cout")
    if p["res"]:
        _need(p["s"] == 1, "res", "a residual needs stride 1")
        _need(cin == cout, "res", f"a residual needs cin == cout, got {cin} != {cout}")
    # pw=1 on a block that expands anyway would be a second key for the same block
    if p["pw"]:
        _need(p["e"] == 1 and g == 1, "pw", "pw=1 applies only at e=1, g=1 (others expand anyway)")


# --- shuffle: ShuffleNetV2 unit as in SPOS (stride 1: split + shuffle; stride 2: two branches)
def _check_shuffle_like(p: Mapping[str, Scalar], shape: Shape) -> None:
    _cin_matches(p, shape)
    _stride12(p)
    cin, cout = int(p["cin"]), int(p["cout"])
    if p["s"] == 1:
        _need(cin == cout, "cout", f"a stride-1 unit keeps its width: cin {cin} != cout {cout}")
        _need(cin % 2 == 0, "cin", f"a stride-1 unit splits channels in half; cin={cin} is odd")
    else:
        _need(cout > cin, "cout", f"a stride-2 unit must widen: cout {cout} <= cin {cin}")
    _need(cout % 2 == 0, "cout", f"cout={cout} must be even (mid = cout / 2)")
    # the default width written out would be a second key for the same block
    mid = int(p["mid"])
    _need(mid != cout // 2, "mid", f"mid={mid} is the default cout / 2; leave it out (or 0)")


def _check_shuffle(p: Mapping[str, Scalar], shape: Shape) -> None:
    _need(p["k"] in (3, 5, 7), "k", f"shuffle kernel must be 3, 5 or 7, got {p['k']}")
    _check_shuffle_like(p, shape)


def _out_strided(p: Mapping[str, Scalar], shape: Shape, c: int) -> Shape:
    n, _, h, w = shape
    s = int(p["s"])
    return (n, c, spatial(h, 3, s), spatial(w, 3, s))


# --- DARTS ops (sep_conv, dil_conv) and the cell-level helpers (pool, skip, zero)
def _check_same_c(p: Mapping[str, Scalar], shape: Shape) -> None:
    _cin_matches(p, shape, "c")
    _stride12(p)


def _check_darts_conv(p: Mapping[str, Scalar], shape: Shape) -> None:
    _check_same_c(p, shape)
    _need(p["k"] in (3, 5), "k", f"DARTS convolutions use k 3 or 5, got {p['k']}")


def _check_pool(p: Mapping[str, Scalar], shape: Shape) -> None:
    _check_same_c(p, shape)
    _odd_k(p)


def _check_skip(p: Mapping[str, Scalar], shape: Shape) -> None:
    _cin_matches(p, shape)
    _stride12(p)
    if p["s"] == 1:
        _need(p["cin"] == p["cout"], "cout", "identity needs cin == cout (use s=2 to reduce)")
    else:  # DARTS FactorizedReduce: two 1x1 stride-2 convs on offset grids, concatenated
        _need(int(p["cout"]) % 2 == 0, "cout", "a factorized reduce needs an even cout")
        _need(shape[2] % 2 == 0 and shape[3] % 2 == 0, "shape", "factorized reduce needs even H, W")


def _out_same_c(p: Mapping[str, Scalar], shape: Shape) -> Shape:
    return _out_strided(p, shape, int(p["c"]))


# --- linear and head: the classifier end of a network
def _check_linear(p: Mapping[str, Scalar], shape: Shape) -> None:
    _cin_matches(p, shape)
    _need(shape[2] == 1 and shape[3] == 1, "shape", f"linear takes (N, C, 1, 1), got {shape}")


def _check_head(p: Mapping[str, Scalar], shape: Shape) -> None:
    _cin_matches(p, shape)


def _out_classes(p: Mapping[str, Scalar], shape: Shape) -> Shape:
    return (shape[0], int(p["cout"]))


_ACT_RELU = _c("act", ACTS, "relu")
_ACT_RELU6 = _c("act", ACTS, "relu6")
# bottleneck width of a shuffle / xception unit's main branch, searched by SPOS channel
# search; 0 (the default, left out of keys) is cout / 2, so older keys keep their meaning
_MID = _i("mid", 0, always=False, minimum=0)

KINDS: dict[str, KindDef] = {
    k.name: k
    for k in (
        KindDef(
            "conv",
            (
                _i("cin"),
                _i("cout"),
                _i("k"),
                _i("s"),
                _i("g", 1),
                _c("bn", (1, 0), 1),
                _ACT_RELU,
                _c("preact", (0, 1), 0),
            ),
            _check_conv,
            _out_conv,
            "k x k conv (groups g) + BN + act; preact=1 is DARTS' ReLU-Conv-BN",
        ),
        KindDef(
            "mbconv",
            (
                _i("cin"),
                _i("cout"),
                _i("e"),
                _i("g", 1),
                _i("k"),
                _i("s"),
                Param("se", int, 0, True, (0, 1)),
                _ACT_RELU6,
                _c("res", (0, 1), 0),
                # 1 keeps the 1x1 expansion at e=1 (FBNet/HW-NAS-Bench ConvBlock); 0, the
                # default, drops it there (MobileNetV2), so older keys keep their meaning
                _c("pw", (0, 1), 0),
            ),
            _check_mbconv,
            lambda p, s: _out_strided(p, s, int(p["cout"])),
            "inverted residual: [1x1 expand (group g) + shuffle], k x k dw, [SE], 1x1 project; "
            "pw=1 keeps the 1x1 expansion at e=1 (FBNet/HW-NAS-Bench ConvBlock)",
        ),
        KindDef(
            "shuffle",
            (_i("cin"), _i("cout"), _i("k"), _i("s"), _MID),
            _check_shuffle,
            lambda p, s: _out_strided(p, s, int(p["cout"])),
            "ShuffleNetV2 unit (SPOS choice block), k in {3, 5, 7}; mid: bottleneck width "
            "(0: cout / 2; SPOS channel search)",
        ),
        KindDef(
            "xception",
            (_i("cin"), _i("cout"), _i("s"), _MID),
            _check_shuffle_like,
            lambda p, s: _out_strided(p, s, int(p["cout"])),
            "SPOS Xception-like unit: three (3x3 dw, 1x1) pairs in the main branch; mid: "
            "bottleneck width (0: cout / 2)",
        ),
        KindDef(
            "sep_conv",
            (_i("c"), _i("k"), _i("s")),
            _check_darts_conv,
            _out_same_c,
            "DARTS sep_conv_3x3/5x5: (ReLU, dw k x k, 1x1, BN) twice, stride on the first",
        ),
        KindDef(
            "dil_conv",
            (_i("c"), _i("k"), _i("s"), _i("d", 2, always=False)),
            _check_darts_conv,
            _out_same_c,
            "DARTS dil_conv_3x3/5x5: ReLU, dilated dw k x k, 1x1, BN",
        ),
        KindDef(
            "pool",
            (_i("c"), _i("k"), Param("mode", str, None, True, POOL_MODES), _i("s")),
            _check_pool,
            _out_same_c,
            "max or average pooling, pad k // 2 (avg excludes the padding, as DARTS)",
        ),
        KindDef(
            "skip",
            (_i("cin"), _i("cout"), _i("s")),
            _check_skip,
            lambda p, s: _out_strided(p, s, int(p["cout"])),
            "identity at stride 1; DARTS FactorizedReduce at stride 2",
        ),
        KindDef(
            "zero",
            (_i("c"), _i("s")),
            lambda p, s: _check_same_c(p, s),
            _out_same_c,
            "DARTS 'none': zeros of the output shape",
        ),
        KindDef(
            "linear",
            (_i("cin"), _i("cout")),
            _check_linear,
            _out_classes,
            "fully connected layer on a (N, C, 1, 1) input",
        ),
        KindDef(
            "head",
            (_i("cin"), _i("cmid", 0, always=False, minimum=0), _i("cout"), _ACT_RELU),
            _check_head,
            _out_classes,
            "[1x1 conv cmid + BN + act], global average pool, linear (cmid=0: no conv)",
        ),
    )
}
