"""Torch modules for every op kind: `build(spec) -> (module, example_input)`.

The modules follow the reference implementations of the search spaces they come from
(ProxylessNAS / FBNet inverted residuals, SPOS ShuffleNetV2 units, DARTS operations), so
a latency measured here is the latency of the block a searcher will export.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from profiler._kinds import se_channels
from profiler.ops import OpSpec

_ACTS: dict[str, Callable[[], nn.Module]] = {
    "none": nn.Identity,
    "relu": lambda: nn.ReLU(inplace=False),
    "relu6": lambda: nn.ReLU6(inplace=False),
    "hswish": nn.Hardswish,
    "swish": nn.SiLU,
}
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def act(name: str) -> nn.Module:
    return _ACTS[name]()


def conv_bn(
    cin: int,
    cout: int,
    k: int,
    s: int = 1,
    g: int = 1,
    a: str = "relu",
    *,
    d: int = 1,
    bn: bool = True,
) -> nn.Sequential:
    """k x k conv with 'same' padding, then BN and activation (the common building unit)."""
    conv = nn.Conv2d(cin, cout, k, s, padding=d * (k // 2), dilation=d, groups=g, bias=not bn)
    return nn.Sequential(conv, nn.BatchNorm2d(cout) if bn else nn.Identity(), act(a))


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        # (N, g, C/g, H, W) -> (N, C/g, g, H, W): interleave the groups' channels
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)


class SqueezeExcite(nn.Module):
    """MobileNetV3 / OFA squeeze-and-excite: reduce 4x (rounded to 8), ReLU, hard sigmoid."""

    def __init__(self, c: int):
        super().__init__()
        mid = se_channels(c)
        self.reduce = nn.Conv2d(c, mid, 1)
        self.expand = nn.Conv2d(mid, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = x.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
        w = nn.functional.hardsigmoid(self.expand(nn.functional.relu(self.reduce(w))))
        return x * w


class MBConv(nn.Module):
    """Inverted residual. The 1x1 expansion is skipped for e=1 without groups (MobileNetV2)
    unless pw=1 (FBNet's IRF block / HW-NAS-Bench's ConvBlock keep it at e=1); grouped
    blocks keep it so the channel shuffle between the two grouped 1x1s mixes groups, as in
    FBNet's ir_k*_e1_g2."""

    def __init__(self, spec: OpSpec):
        super().__init__()
        cin, cout, k, s, g = (spec.num(n) for n in ("cin", "cout", "k", "s", "g"))
        a, mid = str(spec.p["act"]), cin * spec.num("e")
        self.residual = bool(spec.p["res"])
        expand = mid != cin or g > 1 or bool(spec.p["pw"])
        self.expand = conv_bn(cin, mid, 1, g=g, a=a) if expand else nn.Identity()
        self.shuffle = ChannelShuffle(g) if g > 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, k, s, g=mid, a=a)
        self.se = SqueezeExcite(mid) if spec.p["se"] else nn.Identity()
        self.project = conv_bn(mid, cout, 1, g=g, a="none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.shuffle(self.expand(x)))))
        return x + y if self.residual else y


class ShuffleUnit(nn.Module):
    """SPOS ShuffleNetV2 unit. Stride 1: half the channels pass through, the other half go
    through the main branch, then the halves are shuffled on the next unit's split.
    Stride 2: both branches see the whole input and are concatenated."""

    def __init__(self, spec: OpSpec, xception: bool = False):
        super().__init__()
        cin, cout, s = spec.num("cin"), spec.num("cout"), spec.num("s")
        k = 3 if xception else spec.num("k")
        self.stride = s
        inp = cin // 2 if s == 1 else cin  # channels entering the main branch
        mid, out = spec.num("mid") or cout // 2, cout - inp  # mid 0: SPOS's default width
        if xception:  # three (dw 3x3, 1x1) pairs; only the first dw carries the stride
            self.main = nn.Sequential(
                conv_bn(inp, inp, 3, s, g=inp, a="none"),
                conv_bn(inp, mid, 1),
                conv_bn(mid, mid, 3, 1, g=mid, a="none"),
                conv_bn(mid, mid, 1),
                conv_bn(mid, mid, 3, 1, g=mid, a="none"),
                conv_bn(mid, out, 1),
            )
        else:
            self.main = nn.Sequential(
                conv_bn(inp, mid, 1),
                conv_bn(mid, mid, k, s, g=mid, a="none"),
                conv_bn(mid, out, 1),
            )
        self.proj = (
            nn.Sequential(conv_bn(cin, cin, k, s, g=cin, a="none"), conv_bn(cin, cin, 1))
            if s == 2
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            return torch.cat((self.proj(x), self.main(x)), 1)
        # channel shuffle by splitting even / odd channels: (N, C, H, W) -> 2 x (N, C/2, H, W)
        n, c, h, w = x.shape
        x = x.reshape(n * c // 2, 2, h * w).permute(1, 0, 2).reshape(2, n, c // 2, h, w)
        return torch.cat((x[0], self.main(x[1])), 1)


def sep_conv(c: int, k: int, s: int) -> nn.Sequential:
    """DARTS SepConv: the dilation-1 DilConv applied twice, the stride on the first."""
    return nn.Sequential(dil_conv(c, k, s, 1), dil_conv(c, k, 1, 1))


def dil_conv(c: int, k: int, s: int, d: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, k, s, padding=d * (k // 2), dilation=d, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
    )


class FactorizedReduce(nn.Module):
    """DARTS: halve H and W with two 1x1 stride-2 convs on offset grids, concatenated."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.conv2 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat((self.conv1(x), self.conv2(x[:, :, 1:, 1:])), 1))


class Zero(nn.Module):
    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Head(nn.Module):
    """[1x1 conv + BN + act] -> global average pool -> linear: the end of every network."""

    def __init__(self, cin: int, cmid: int, classes: int, a: str):
        super().__init__()
        self.conv = conv_bn(cin, cmid, 1, a=a) if cmid else nn.Identity()
        self.fc = nn.Linear(cmid or cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).mean((2, 3))  # (N, C, H, W) -> (N, C)
        return self.fc(x)


def _conv(spec: OpSpec) -> nn.Module:
    cin, cout, k, s, g = (spec.num(n) for n in ("cin", "cout", "k", "s", "g"))
    a, bn = str(spec.p["act"]), bool(spec.p["bn"])
    if not spec.p["preact"]:
        return conv_bn(cin, cout, k, s, g, a, bn=bn)
    conv = nn.Conv2d(cin, cout, k, s, padding=k // 2, groups=g, bias=not bn)
    return nn.Sequential(act(a), conv, nn.BatchNorm2d(cout) if bn else nn.Identity())


def _pool(spec: OpSpec) -> nn.Module:
    k, s = spec.num("k"), spec.num("s")
    if spec.p["mode"] == "max":
        return nn.MaxPool2d(k, s, padding=k // 2)
    return nn.AvgPool2d(k, s, padding=k // 2, count_include_pad=False)


def _skip(spec: OpSpec) -> nn.Module:
    if spec.num("s") == 1:
        return nn.Identity()
    return FactorizedReduce(spec.num("cin"), spec.num("cout"))


BUILDERS: dict[str, Callable[[OpSpec], nn.Module]] = {
    "conv": _conv,
    "mbconv": MBConv,
    "shuffle": ShuffleUnit,
    "xception": lambda spec: ShuffleUnit(spec, xception=True),
    "sep_conv": lambda spec: sep_conv(spec.num("c"), spec.num("k"), spec.num("s")),
    "dil_conv": lambda spec: dil_conv(spec.num("c"), spec.num("k"), spec.num("s"), spec.num("d")),
    "pool": _pool,
    "skip": _skip,
    "zero": lambda spec: Zero(spec.num("s")),
    "linear": lambda spec: nn.Sequential(
        nn.Flatten(), nn.Linear(spec.num("cin"), spec.num("cout"))
    ),
    "head": lambda spec: Head(
        spec.num("cin"), spec.num("cmid"), spec.num("cout"), str(spec.p["act"])
    ),
}


def build_module(spec: OpSpec) -> nn.Module:
    """The block as an eval-mode float32 module (runtimes cast or quantise it later)."""
    return BUILDERS[spec.kind](spec).eval()


def example_input(spec: OpSpec, seed: int = 0) -> torch.Tensor:
    """A seeded random input of the spec's shape; int8 specs take float32 inputs (the
    runtime quantises the graph, not the tensor)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(spec.shape, generator=gen)
    return x.to(_DTYPES.get(spec.dtype, torch.float32))


def build(spec: OpSpec, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """`(module, example_input)` for a spec; the module's output has `spec.out_shape`."""
    module = build_module(spec)
    x = example_input(spec, seed)
    if x.dtype != torch.float32:
        module = module.to(x.dtype)
    return module, x
