"""SMASH: training through the generated weights lowers the loss of architectures it
never trained on, every scored candidate meets the constraint, the result carries the
top k and the Pareto front, a soft loss is refused (the registry's contract
test covers the rest)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import searchers.algorithms.smash  # noqa: F401  (registers "smash")
from searchers.algorithms.smash import Smash
from searchers.core.hyper import SmashNet
from searchers.core.losses import HardTarget, SoftLatency
from searchers.core.selectors import uniform_arch
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class


def _make(table: LatencyTable, data: Data, hard: HardTarget | None, **opts: Any) -> Smash:
    config = replace(searcher_class("smash").Config(), epochs=1, bn_calib_batches=2, **opts)
    s = create_searcher("smash", table=table, data=data, config=config, latency=hard)
    assert isinstance(s, Smash)
    return s


def _held_out_loss(s: Smash, archs: list[list[int]], x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean CE of fixed architectures on a fixed batch, with batch statistics."""
    with torch.no_grad():
        losses = [F.cross_entropy(s.forward(x, s.plan_for(a)), y) for a in archs]
    return float(torch.stack(losses).mean())


def test_training_lowers_the_loss_of_held_out_random_architectures(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    s = _make(tiny_table, tiny_data, None)  # at the default lr
    gen = torch.Generator().manual_seed(123)  # not the training draws
    archs = [uniform_arch(tiny_table.mask, gen) for _ in range(8)]
    x, y = next(iter(tiny_data.val.batches(128)))
    assert isinstance(s.net, SmashNet)
    hyper = [*s.net.hyper.inp.parameters(), *s.net.hyper.out.parameters()]
    start = [p.detach().clone() for p in hyper]
    before = _held_out_loss(s, archs, x, y)
    batches = itertools.cycle(tiny_data.train_batches(0, 0))
    for _ in range(30):
        s.weight_step(*next(batches), warmup=False)
    after = _held_out_loss(s, archs, x, y)
    assert after < 0.85 * before, (before, after)
    moved = [not torch.equal(a, b) for a, b in zip(start, hyper, strict=True)]
    assert all(moved)  # the hypernetwork itself trained, not only the free weights


def test_every_scored_candidate_meets_the_constraint_with_top_k_and_front(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    lo, hi = tiny_table.bounds()
    hard = HardTarget.between(lo + 0.2 * (hi - lo), lo + 0.4 * (hi - lo))
    result = _make(tiny_table, tiny_data, hard, random_archs=12, topk=4).run()
    scored = result.selection["considered"]
    assert 1 < len(scored) == result.selection["evaluated"] <= 12
    assert all(hard.satisfied(r["table_ms"]) for r in scored)
    top = result.selection["topk"]
    assert len(top) == min(4, len(scored)) and top[0]["val_acc"] == result.val_acc
    assert [r["val_acc"] for r in top] == sorted((r["val_acc"] for r in scored), reverse=True)[:4]
    front = result.selection["pareto"]
    assert [r["table_ms"] for r in front] == sorted(r["table_ms"] for r in front)
    assert all(a["val_acc"] < b["val_acc"] for a, b in itertools.pairwise(front))
    assert hard.satisfied(result.table_ms) and result.repair is None


def test_evolution_is_available_as_the_selector(tiny_table: LatencyTable, tiny_data: Data) -> None:
    quick = {"population": 6, "topk": 3, "generations": 1, "mutations": 3, "crossovers": 3}
    lo, hi = tiny_table.bounds()
    hard = HardTarget(lo + 0.3 * (hi - lo), "eq", 0.05)
    result = _make(tiny_table, tiny_data, hard, selector="evolution", **quick).run()
    assert [g["generation"] for g in result.selection["generations"]] == [0, 1]
    assert all(hard.satisfied(r["table_ms"]) for r in result.selection["considered"])


def test_smash_refuses_a_soft_loss_and_bad_options(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    with pytest.raises(ValueError, match="under a constraint"):
        create_searcher(
            "smash", table=tiny_table, data=tiny_data,
            config=searcher_class("smash").Config(), latency=SoftLatency("mul#log", 1.0),
        )  # fmt: skip
    bad_options: list[dict[str, Any]] = [{"basis": 0}, {"hyper_hidden": 0}, {"random_archs": 0}]
    for bad in bad_options:
        with pytest.raises(ValueError, match="must be >= 1"):
            searcher_class("smash").Config(**bad)
