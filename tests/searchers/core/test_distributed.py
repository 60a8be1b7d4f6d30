"""Multi-process search (core/distributed.py) on two gloo ranks on CPU: the pieces (batch
shards, the synchronised BN, dropout, gradient averaging, the divergence check) against
one process over the concatenated batch, and whole short searches of each family —
proxyless (a hard target: λ moves), proxyless-rl (REINFORCE), spos (sampling, then
evolution), second-order darts — whose α, λ, weights and export are bit-identical on
both ranks and equal, within floating point, to one process over the same global batch."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as tdist
import torch.nn.functional as F
from torch import nn

from searchers import data as datasets
from searchers.core.distributed import (
    Dist,
    SyncBatchNorm2d,
    dropout,
    local_batchnorm,
    sync_batchnorm,
)
from searchers.core.losses import HardTarget
from searchers.core.unrolled import unrolled_arch_grads
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from searchers.spaces import create_space
from tests.searchers.conftest import TinyChain, flops_table

WORLD = 2


# the one-process runs compared here run on 2 threads (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("two_threads")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _entry(rank: int, port: int, target: Callable[..., None], args: tuple[Any, ...]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    Dist.from_env("cpu", timeout_s=120)
    try:
        target(rank, *args)
    finally:
        tdist.destroy_process_group()


def _spawn(target: Callable[..., None], *args: Any) -> None:
    """`target(rank, *args)` on two gloo ranks; a failing rank fails the test."""
    torch.multiprocessing.start_processes(
        _entry, (_free_port(), target, args), nprocs=WORLD, start_method="spawn"
    )


# --- the pieces ------------------------------------------------------------------------------
def test_a_batch_is_cut_into_contiguous_equal_shards() -> None:
    x, y = torch.arange(12.0).view(6, 2), torch.arange(6)
    shards = [Dist(rank, 3).shard(x, y) for rank in range(3)]
    assert torch.equal(torch.cat([s[0] for s in shards]), x)
    assert [s[1].tolist() for s in shards] == [[0, 1], [2, 3], [4, 5]]
    assert Dist().shard(x, y)[0] is x  # one process: the batch itself


def test_a_batch_size_the_ranks_do_not_divide_is_refused(
    tiny_table: LatencyTable, tiny_data: datasets.Data
) -> None:
    with pytest.raises(ValueError, match="batch-size: 30 does not split evenly over 4 processes"):
        Dist(0, 4).check_batch(30)
    with pytest.raises(ValueError, match="--batch-size divisible by 4"):
        Dist(1, 4).shard(torch.zeros(30, 1), torch.zeros(30))


def test_sync_bn_is_plain_bn_on_one_process_and_converts_both_ways() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.BatchNorm1d(4))
    assert sync_batchnorm(net) == 1 and type(net[1]) is SyncBatchNorm2d
    x = torch.randn(4, 3, 6, 6)
    ref = nn.BatchNorm2d(4)
    assert torch.equal(net[1](net[0](x)), ref(net[0](x)))  # no process group: BatchNorm2d
    local_batchnorm(net)
    assert type(net[1]) is nn.BatchNorm2d and set(net.state_dict()) == {
        "0.weight", "0.bias", *(f"1.{k}" for k in ref.state_dict()),
        *(f"2.{k}" for k in ref.state_dict()),
    }  # fmt: skip


def _pieces(rank: int) -> None:
    """On each rank: its shard through the distributed pieces, against one process over
    the whole batch (computed here too, identically on both ranks)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 5, 5, generator=gen) * 2 + 1
    mine = slice(4 * rank, 4 * rank + 4)
    for momentum in (0.1, None):
        ref, bn = nn.BatchNorm2d(3, momentum=momentum), nn.BatchNorm2d(3, momentum=momentum)
        sync_batchnorm(bn)
        with torch.no_grad():
            for m in (ref, bn):
                m.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
                m.bias.copy_(torch.tensor([0.1, 0.0, -0.2]))
        xr, xs = x.clone().requires_grad_(), x[mine].clone().requires_grad_()
        for _ in range(2):  # twice: the running statistics' update rule too
            out_r, out_s = ref(xr), bn(xs)
        w = torch.linspace(-1, 1, out_r.numel()).view_as(out_r)  # a loss that mixes rows
        (out_r * w).sum().backward()
        (out_s * w[mine]).sum().backward()
        assert torch.allclose(out_s, out_r[mine], atol=1e-5)
        assert torch.allclose(bn.running_mean, ref.running_mean, atol=1e-6)
        assert torch.allclose(bn.running_var, ref.running_var, atol=1e-5)
        assert int(bn.num_batches_tracked) == int(ref.num_batches_tracked) == 2
        assert xs.grad is not None and xr.grad is not None
        assert torch.allclose(xs.grad, xr.grad[mine], atol=1e-5)  # through the global stats
        d = Dist.current()
        grads = d.average([bn.weight.grad, None])
        assert grads[1] is None and grads[0] is not None
        assert torch.allclose(grads[0] * WORLD, ref.weight.grad, atol=1e-5)  # type: ignore[operator]
    torch.manual_seed(3)
    whole = F.dropout(torch.ones(8, 2, 3, 3), 0.4, True)
    torch.manual_seed(3)
    assert torch.equal(dropout(torch.ones(4, 2, 3, 3), 0.4, True), whole[mine])
    _unrolled(rank)
    d = Dist.current()
    d.check_same("same", [torch.ones(3)])
    with pytest.raises(RuntimeError, match="differ between ranks"):
        d.check_same("α", [torch.tensor([1.0, float(rank)])])
    assert d.sum_counts(3 + rank, 10) == (7, 20) and d.mean(float(rank)) == 0.5


def _unrolled(rank: int) -> None:
    """DARTS' second-order gradient on shards, every gradient averaged (`reduce`), is one
    process's on the whole batch; in float64, where the finite difference is exact enough
    to tell."""
    torch.manual_seed(0)
    x, y = torch.randn(8, 2, 3, 3, dtype=torch.float64), torch.tensor([0, 1] * 4)
    convs = nn.ModuleList(nn.Conv2d(2, 2, 1) for _ in range(2)).double()
    bn, head = nn.BatchNorm2d(2).double(), nn.Linear(2, 2).double()
    alpha = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    weights = [*convs.parameters(), *bn.parameters(), *head.parameters()]

    def loss(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        mixed = sum(w * c(xb) for w, c in zip(torch.softmax(alpha, 0), convs, strict=True))
        return F.cross_entropy(head(bn(mixed).mean(dim=(2, 3))), yb)  # type: ignore[arg-type]

    whole = unrolled_arch_grads(weights, [alpha], lambda: loss(x, y), lambda: loss(-x, y), 0.1)
    sync_batchnorm(bn)
    d, mine = Dist.current(), slice(4 * rank, 4 * rank + 4)
    xs, ys = x[mine], y[mine]
    shards = unrolled_arch_grads(weights, [alpha], lambda: loss(xs, ys), lambda: loss(-xs, ys),
                                 0.1, reduce=d.average)  # fmt: skip
    assert torch.allclose(shards[0], whole[0], rtol=1e-7, atol=1e-10), (shards, whole)


@pytest.mark.slow
def test_sync_bn_dropout_and_averages_equal_one_process_over_the_whole_batch() -> None:
    _spawn(_pieces)


# --- whole searches ------------------------------------------------------------------------------
# darts is first order: the second order is `_unrolled`'s, in float64 (finite differences in
# float32 turn the ranks' last-bit differences into ~1e-5 of α within a few steps)
SPOS = {"population": 4, "topk": 2, "generations": 2, "mutations": 2, "crossovers": 2}
SEARCHES: dict[str, dict[str, Any]] = {
    "proxyless": {"epochs": 2, "warmup_epochs": 1},
    "proxyless-rl": {"epochs": 2, "warmup_epochs": 1, "samples": 2},
    "spos": {"epochs": 1, "eval_paths": 1, **SPOS},
    "darts": {"epochs": 1},
}


def _setting(name: str) -> tuple[LatencyTable, datasets.Data, HardTarget]:
    if name == "darts":  # the cell space, as conftest's tiny_cell_table
        table = flops_table(create_space("darts", resolution=8, classes=10, C=8, cells=3))
        data = datasets.load("digits", 8, batch_size=16, data_seed=0, limit=120)
    else:
        table = flops_table(TinyChain())
        data = datasets.load("digits", 16, batch_size=32, data_seed=0, limit=400)
    lo, hi = searcher_class(name).table_bounds(table)
    return table, data, HardTarget(lo + 0.4 * (hi - lo), "eq", 0.05)


def _search(name: str) -> dict[str, Any]:
    """A short search; what must agree between ranks and with one process."""
    table, data, target = _setting(name)
    config = searcher_class(name).Config(**SEARCHES[name])
    s = create_searcher(name, table=table, data=data, config=config, latency=target)
    r = s.run()
    return {
        "arch": {k: v.clone() for k, v in s.arch.state_dict().items()},
        "net": {k: v.clone() for k, v in s.net.state_dict().items()},
        "lam": target.lam,
        "columns": r.columns,
        "history": [{k: v for k, v in row.items() if k != "seconds"} for row in r.history],
        "accs": (r.val_acc, r.test_acc),
    }


def _searches(rank: int, out: Path) -> None:
    torch.save({name: _search(name) for name in SEARCHES}, out / f"rank{rank}.pt")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("ranks")
    _spawn(_searches, out)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


def _identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    return [k for k in a if not torch.allclose(a[k].double(), b[k].double(), 1e-5, 1e-6)]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SEARCHES))
def test_two_ranks_search_as_one_process_over_the_global_batch(
    ranks: list[dict[str, Any]], name: str
) -> None:
    r0, r1 = ranks[0][name], ranks[1][name]
    assert _identical(r0["arch"], r1["arch"]) and _identical(r0["net"], r1["net"])
    assert r0["lam"] == r1["lam"] and r0["columns"] == r1["columns"]
    assert r0["history"] == r1["history"] and r0["accs"] == r1["accs"]
    one = _search(name)  # one process, the same global batches
    assert one["columns"] == r0["columns"]  # the same export
    assert _close(one["arch"], r0["arch"]) == [] and _close(one["net"], r0["net"]) == []
    assert one["lam"] == pytest.approx(r0["lam"], abs=1e-9)
    assert one["accs"] == pytest.approx(r0["accs"], abs=1e-9)
    if name == "proxyless":
        assert r0["lam"] != 0.0  # the hard target's dual step ran on both ranks alike
