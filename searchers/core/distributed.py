"""Multi-process search on torch.distributed: one global batch split over N ranks.

A search on N ranks must be the search on one process over the same global batch, only
computed in N parts; NNI's DDP one-shot strategies let each rank's architecture drift
(NNI issue #5013), which is what this module exists to prevent. What it takes:

- every rank runs the same loop on the same seeds, so the same paths, the same Gumbel
  noise and the same selections are drawn everywhere (the loop's generators are seeded
  per run, not per rank); each rank gets a contiguous equal slice of every global batch
  (`Dist.shard`; a batch size that N does not divide is refused);
- weight and architecture gradients are averaged over the ranks before any clipping or
  optimiser step (`Dist.average`; a parameter no path used keeps `grad = None` on every
  rank, as it would on one process, so momentum and weight decay skip it there too);
- BatchNorm statistics are the global batch's: `sync_batchnorm` turns the supernet's
  BNs into `SyncBatchNorm2d` (sums all-reduced by a differentiable all-reduce, so
  gradients flow through the global mean and variance as on one process). torch's own
  SyncBatchNorm runs on CUDA only;
- dropout (P-DARTS' skip dropout) draws the global batch's mask and keeps the rank's
  rows (`dropout`), so the global RNG advances as on one process;
- accuracies are global: correct counts are summed over ranks.

Everything identical across ranks stays so because every rank applies the same averaged
gradient to the same parameters; `Dist.check_same` compares bit-exact checksums of
what must agree (the loop does it every epoch). Outside a process group every helper
is the identity and nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch import nn

ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
_local_depth = 0  # > 0 inside `unsharded()`: every rank runs whole batches


def sharding() -> bool:
    """True while a forward runs on this rank's shard of a global batch."""
    return (
        _local_depth == 0
        and tdist.is_available()
        and tdist.is_initialized()
        and tdist.get_world_size() > 1
    )


@contextmanager
def unsharded() -> Iterator[None]:
    """Every rank runs whole batches here: BN and dropout act as on one process."""
    global _local_depth
    _local_depth += 1
    try:
        yield
    finally:
        _local_depth -= 1


@dataclass(frozen=True)
class Dist:
    """This process's place in the search: rank `rank` of `world` (1: no process group)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @classmethod
    def current(cls) -> Dist:
        """The default process group when one is initialised, else a single process."""
        if not (tdist.is_available() and tdist.is_initialized()):
            return cls()
        local = int(os.environ.get("LOCAL_RANK", tdist.get_rank()))
        return cls(tdist.get_rank(), tdist.get_world_size(), local)

    @classmethod
    def from_env(cls, device: str = "cpu", timeout_s: float = 1800) -> Dist:
        """Join the process group torchrun (or `hwlat search --nproc`) described in the
        environment: gloo on CPU, NCCL on CUDA. No WORLD_SIZE (or 1): a single process."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        missing = [k for k in ENV if k not in os.environ]
        if missing:
            raise ValueError(f"distributed: WORLD_SIZE={world} but {', '.join(missing)} unset")
        if not tdist.is_initialized():
            backend = "nccl" if device.startswith("cuda") else "gloo"
            tdist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
        return cls.current()

    def device(self, device: str) -> str:
        """A CUDA rank runs on its own GPU (LOCAL_RANK)."""
        return f"cuda:{self.local_rank}" if self.active and device == "cuda" else device

    # --- data ------------------------------------------------------------------------------
    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise ValueError(
                f"batch-size: {batch_size} does not split evenly over {self.world} processes; "
                f"pass a --batch-size divisible by {self.world}"
            )

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's contiguous, equal slice of a global batch."""
        if not self.active:
            return x, y
        self.check_batch(len(y))
        n = len(y) // self.world
        rows = slice(self.rank * n, (self.rank + 1) * n)
        return x[rows], y[rows]

    # --- collectives -------------------------------------------------------------------------
    def average(self, grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """The mean over ranks of each gradient, in one all-reduce; None stays None (no
        path used that parameter on any rank: the same paths run everywhere)."""
        out = list(grads)
        present = [i for i, g in enumerate(out) if g is not None]
        if not self.active or not present:
            return out
        flat = torch.cat([out[i].reshape(-1) for i in present])  # type: ignore[union-attr]
        tdist.all_reduce(flat)
        flat.div_(self.world)
        start = 0
        for i in present:
            g = out[i]
            assert g is not None
            out[i] = flat[start : start + g.numel()].view_as(g)
            start += g.numel()
        return out

    def average_grads(self, params: Iterable[nn.Parameter]) -> None:
        """`.grad` of each parameter replaced by its mean over ranks."""
        if not self.active:
            return
        params = [p for p in params if p.grad is not None]
        for p, g in zip(params, self.average([p.grad for p in params]), strict=True):
            p.grad = g

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise sum over ranks (a new tensor)."""
        total = values.clone()
        if self.active:
            tdist.all_reduce(total)
        return total

    def sum_counts(self, correct: int, seen: int) -> tuple[int, int]:
        """(correct, seen) summed over ranks: an accuracy over every rank's batches."""
        total = self.sum(torch.tensor([correct, seen], dtype=torch.int64))
        return int(total[0]), int(total[1])

    def mean(self, value: float) -> float:
        """The mean of a float over ranks (the loss of equal shards: the global batch's)."""
        if not self.active:
            return value
        return float(self.sum(torch.tensor([value], dtype=torch.float64))[0] / self.world)

    def broadcast_(self, tensors: Iterable[torch.Tensor]) -> None:
        """Rank 0's values into every rank's tensors, in place."""
        if self.active:
            for t in tensors:
                tdist.broadcast(t, 0)

    def barrier(self) -> None:
        if self.active:
            tdist.barrier()

    def check_same(self, what: str, tensors: Iterable[torch.Tensor]) -> None:
        """Refuse to go on when `tensors` differ by one bit between ranks: a bit-exact
        checksum per tensor (its bits summed as integers) compared with rank 0's."""
        if not self.active:
            return
        sums = torch.stack([_bits(t) for t in tensors])
        ref = sums.clone()
        tdist.broadcast(ref, 0)
        differ = self.sum(torch.tensor([int(not torch.equal(sums, ref))]))
        if int(differ[0]):
            raise RuntimeError(f"distributed: {what} differ between ranks (a determinism bug)")

    def same_object(self, what: str, value: Any) -> None:
        """Refuse ranks that built different runs (arguments, table, data)."""
        if not self.active:
            return
        ref = [value]
        tdist.broadcast_object_list(ref, 0)
        differ = self.sum(torch.tensor([int(ref[0] != value)]))
        if int(differ[0]):
            raise ValueError(f"distributed: the ranks' {what} differ; run the same command")


def _bits(t: torch.Tensor) -> torch.Tensor:
    """A checksum that changes with any one bit of `t`: its words summed as integers."""
    raw = t.detach().reshape(-1).contiguous().cpu()
    ints = raw.view(torch.int32) if raw.element_size() in (4, 8) else raw.view(torch.uint8)
    return ints.sum(dtype=torch.int64)


# --- synchronised BatchNorm --------------------------------------------------------------------
class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d over the global batch while sharding (any backend, CPU included);
    otherwise, and in eval mode, nn.BatchNorm2d itself. Same parameters, buffers and
    state_dict keys, so checkpoints move between one and N processes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (sharding() and (self.training or self.running_mean is None)):
            return super().forward(x)
        return sync_batch_norm(self, x)


def sync_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """`bn` on its first x.shape[1] channels (a sliced unit runs fewer) with the global
    batch's mean and biased variance; running statistics updated as BatchNorm2d does,
    with the unbiased global variance. One all-reduce of (Σx, Σx², count) per forward
    (and one per backward): the sums in float64, so E[x²] − E[x]² loses nothing that
    float32 statistics would keep."""
    c, dims = x.shape[1], (0, 2, 3)
    x64 = x.double()
    local = torch.cat([x64.sum(dims), x64.square().sum(dims), x64.new_tensor([x.numel() / c])])
    total = _AllReduceSum.apply(local)  # [2C + 1]
    n = total[-1].detach()
    mean = total[:c] / n
    var = (total[c : 2 * c] / n - mean.square()).clamp_min(0)
    scale = torch.rsqrt(var + bn.eps).to(x.dtype)
    out = (x - mean.to(x.dtype).view(1, c, 1, 1)) * scale.view(1, c, 1, 1)
    if bn.weight is not None and bn.bias is not None:
        out = out * bn.weight[:c].view(1, c, 1, 1) + bn.bias[:c].view(1, c, 1, 1)
    if bn.training and bn.track_running_stats and bn.running_mean is not None:
        unbiased = var.detach() * (n / (n - 1).clamp_min(1))
        _update_running(bn, mean.detach().to(x.dtype), unbiased.to(x.dtype), c)
    return out


class _AllReduceSum(torch.autograd.Function):
    """Σ over ranks, differentiable: the gradient of every rank's input is the sum of
    the ranks' output gradients (each rank's loss reads the sum)."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        out = t.clone(memory_format=torch.contiguous_format)
        tdist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone(memory_format=torch.contiguous_format)
        tdist.all_reduce(out)
        return out


@torch.no_grad()
def _update_running(bn: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor, c: int) -> None:
    assert bn.running_mean is not None and bn.running_var is not None
    assert bn.num_batches_tracked is not None
    bn.num_batches_tracked.add_(1)
    f = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
    bn.running_mean[:c].mul_(1 - f).add_(mean, alpha=f)
    bn.running_var[:c].mul_(1 - f).add_(var.to(bn.running_var), alpha=f)


def sync_batchnorm(net: nn.Module) -> int:
    """Every nn.BatchNorm2d of `net` made a SyncBatchNorm2d in place (its class swapped):
    the same module objects, so views that share a unit (core/sliced.py) stay shared and
    an optimiser built already keeps its parameters. Returns how many."""
    bns = [m for m in net.modules() if type(m) is nn.BatchNorm2d]
    for m in bns:
        m.__class__ = SyncBatchNorm2d
    return len(bns)


def local_batchnorm(net: nn.Module) -> None:
    """Undo `sync_batchnorm` (rank 0 alone after the search: scoring, finalists)."""
    for m in net.modules():
        if type(m) is SyncBatchNorm2d:
            bn: nn.Module = m
            bn.__class__ = nn.BatchNorm2d


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout; while sharding, the mask of the whole global batch (ranks x rows, as
    one process draws it, so every rank's global RNG advances alike) cut to this rank's
    rows. F.dropout on CPU is x·bernoulli(1 − p)/(1 − p), which this repeats."""
    if not (training and 0 < p < 1 and sharding()):
        return F.dropout(x, p, training)
    world, rank, n = tdist.get_world_size(), tdist.get_rank(), len(x)
    noise = x.new_empty((world * n, *x.shape[1:])).bernoulli_(1 - p).div_(1 - p)
    return x * noise[rank * n : (rank + 1) * n]
