"""Weight sharing across channel choices: one unit at the widest width, sliced per choice.

SPOS's channel search (Guo et al., 2019) trains one block per layer at the widest
bottleneck and runs a narrower choice on the first `mid` channels of its weights, so
the supernet's parameters and memory stay flat in the number of width choices.
`build_candidates` does that for the shuffle / xception ops of a layer that differ only
in `mid`: one `ShuffleUnit` at the widest mid, and a `SlicedUnit` view per candidate.

What a view of width m slices in the unit's main branch (`profiler.blocks.ShuffleUnit`;
every 1x1 is dense, every k x k depthwise):

    shuffle:   1x1 inp->mid   weight[:m]      BN[:m]
               kxk dw mid     weight[:m], groups m, BN[:m]
               1x1 mid->out   weight[:, :m]   BN whole
    xception:  3x3 dw inp     whole
               1x1 inp->mid   weight[:m]      BN[:m]
               3x3 dw mid     weight[:m], groups m, BN[:m]
               1x1 mid->mid   weight[:m, :m]  BN[:m]
               3x3 dw mid     weight[:m], groups m, BN[:m]
               1x1 mid->out   weight[:, :m]   BN whole

That is: each conv reads the first (current width) input channels; a depthwise conv is
as wide as its input; a 1x1 writes m channels, except the last, which writes the unit's
own output. The stride-2 projection branch and the channel split are the unit's, whole.

Every view registers the shared unit as its submodule `unit`: `parameters()` of a
mixed op or net yields each shared tensor once (nn.Module deduplicates), while each view
still names its weights, which `Single(i, learn=False)` (mixed.py) needs to detach them.
For core/init.py this means: `share_candidate_init` sees the views of one unit as one
structure, so copying one view's weights into another of the same unit copies a unit
onto itself (a no-op, still counted), and across kernel sizes the smallest unit's
kernels are padded into the larger units as before; `zero_residual_bn` only touches
MBConvs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from profiler.blocks import ShuffleUnit, build_module
from profiler.ops import OpSpec
from searchers.core.distributed import SyncBatchNorm2d, sharding, sync_batch_norm

SLICEABLE = ("shuffle", "xception")


def mid_of(op: OpSpec) -> int:
    """The bottleneck width a shuffle / xception op runs at (`mid=0`: cout / 2)."""
    return op.num("mid") or op.num("cout") // 2


def build_candidates(ops: Sequence[OpSpec]) -> list[nn.Module]:
    """A layer's candidate modules, in `ops` order: shuffle / xception ops that differ only
    in `mid` share one unit at the widest mid; every other op is built on its own. All
    come in eval mode, as `build_module` gives them (a supernet sets the mode)."""
    groups: dict[OpSpec, list[int]] = {}
    for i, op in enumerate(ops):
        if op.kind in SLICEABLE:
            groups.setdefault(op.replace(mid=0), []).append(i)
    shared: dict[int, nn.Module] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        widest = max(members, key=lambda i: mid_of(ops[i]))
        unit = build_module(ops[widest])
        assert isinstance(unit, ShuffleUnit)
        for i in members:
            shared[i] = SlicedUnit(unit, mid_of(ops[i])).eval()
    return [shared[i] if i in shared else build_module(op) for i, op in enumerate(ops)]


class SlicedUnit(nn.Module):
    """A shuffle / xception unit run at bottleneck width `mid` on a wider unit's weights
    (the first `mid` channels of each; the module docstring lists them)."""

    def __init__(self, unit: ShuffleUnit, mid: int):
        super().__init__()
        convs = [_parts(block)[0] for block in unit.main]
        widest = next(c.out_channels for c in convs if c.kernel_size == (1, 1))
        if not 1 <= mid <= widest:
            raise ValueError(
                f"mid: a view of a unit of width {widest} needs 1..{widest}, got {mid}"
            )
        self.unit, self.mid = unit, mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the branches of ShuffleUnit.forward, with the main branch sliced
        if self.unit.proj is not None:
            return torch.cat((self.unit.proj(x), self._main(x)), 1)
        n, c, h, w = x.shape  # split even / odd channels: the previous unit's shuffle
        x = x.reshape(n * c // 2, 2, h * w).permute(1, 0, 2).reshape(2, n, c // 2, h, w)
        return torch.cat((x[0], self._main(x[1])), 1)

    def _main(self, x: torch.Tensor) -> torch.Tensor:
        blocks = list(self.unit.main)
        width = x.shape[1]
        for i, block in enumerate(blocks):
            conv, bn, act = _parts(block)
            if conv.kernel_size != (1, 1):  # depthwise: as wide as its input
                out, groups = width, width
            else:  # the last 1x1 writes the unit's output, the others the bottleneck
                out, groups = (conv.out_channels if i == len(blocks) - 1 else self.mid), 1
            weight = conv.weight[:out, : width // groups]
            bias = None if conv.bias is None else conv.bias[:out]
            x = F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, groups)
            x = act(_batch_norm(bn, x, self.training))
            width = out
        return x

    def extra_repr(self) -> str:
        return f"mid={self.mid}"


def _parts(block: nn.Module) -> tuple[nn.Conv2d, nn.BatchNorm2d, nn.Module]:
    """The (conv, BN, activation) of a `profiler.blocks.conv_bn`."""
    assert isinstance(block, nn.Sequential) and len(block) == 3
    conv, bn, act = block[0], block[1], block[2]
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    return conv, bn, act


def _batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor, training: bool) -> torch.Tensor:
    """`bn(x)` on its first x.shape[1] channels, as nn.BatchNorm2d.forward does it: the
    running statistics of those channels update in place through the slices."""
    if training and type(bn) is SyncBatchNorm2d and sharding():  # N ranks: global statistics
        return sync_batch_norm(bn, x)
    c = x.shape[1]
    momentum = 0.0 if bn.momentum is None else bn.momentum
    if training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:  # cumulative moving average
            momentum = 1.0 / float(bn.num_batches_tracked)
    mean, var = bn.running_mean, bn.running_var
    batch_stats = training or (mean is None and var is None)
    if training and not bn.track_running_stats:  # buffers kept but not to be updated
        mean = var = None
    return F.batch_norm(
        x,
        None if mean is None else mean[:c],
        None if var is None else var[:c],
        None if bn.weight is None else bn.weight[:c],
        None if bn.bias is None else bn.bias[:c],
        batch_stats,
        momentum,
        bn.eps,
    )
