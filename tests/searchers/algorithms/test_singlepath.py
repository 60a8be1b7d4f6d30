"""Single-Path NAS on the core: one level (weights and thresholds in one step), the
thresholds armed with every indicator on, the soft λ·log E[LAT] loss, the search lands
near a hard target by itself, and the spaces it refuses or narrows."""

from __future__ import annotations

import pytest
import torch

from searchers.core.losses import HardTarget, SoftLatency
from searchers.data import Data
from searchers.latency import LatencyTable
from searchers.registry import create_searcher, searcher_class
from searchers.spaces import create_space
from tests.searchers.conftest import flops_table


def _searcher(table: LatencyTable, data: Data, latency: object = None, **kw: object):  # type: ignore[no-untyped-def]
    config = searcher_class("singlepath").Config(**{"epochs": 2, "warmup_epochs": 1, **kw})  # type: ignore[arg-type]
    return create_searcher("singlepath", table=table, data=data, config=config, latency=latency)


def test_one_step_moves_weights_and_thresholds_from_all_on(
    tiny_table: LatencyTable, tiny_data: Data
) -> None:
    adam = {"threshold_optimizer": "adam", "arch_lr": 0.05}  # its step is ~arch_lr a threshold
    s = _searcher(tiny_table, tiny_data, HardTarget(0.05, "eq", 0.05), **adam)
    assert not bool(s.arch.armed)
    x, y = next(iter(tiny_data.train.batches(32, 0)))
    s.weight_step(x, y, warmup=True)  # warm-up: no thresholds yet
    assert not bool(s.arch.armed) and torch.equal(s.arch.t, torch.zeros_like(s.arch.t))
    s.arch.arm(s.config.margin)  # what the first search step does when unarmed
    z = s.arch.z().detach()
    torch.testing.assert_close(z, torch.full_like(z, s.config.margin))  # all on, margin over
    t_before = s.arch.t.detach().clone()
    w_before = s.net.layers[0].block.depthwise[0].weight.detach().clone()
    s.weight_step(x, y, warmup=False)
    assert bool(s.arch.armed)
    moved = (s.arch.t.detach() - t_before).abs()
    # one Adam step on the thresholds (at most ~arch_lr each) and one on the weights
    assert float(moved.max()) > 0 and float(moved.max()) <= 1.01 * s.config.arch_lr
    assert not torch.equal(s.net.layers[0].block.depthwise[0].weight, w_before)
    # all on: the decided architecture is the largest super-kernel of every layer
    largest = [max(g.column.items())[1] for g in s.net.grids()]
    assert s.arch.argmax() == largest


def test_the_soft_loss_prunes_the_super_kernels(tiny_table: LatencyTable, tiny_data: Data) -> None:
    # Adam moves a threshold by ~arch_lr a step whatever λ is (λ sets the balance with
    # CE, not the speed): the indicators start `margin` on, so the search needs more
    # than margin / arch_lr steps to switch any off (19 steps a search epoch here)
    soft = SoftLatency("singlepath", lam=5.0)
    s = _searcher(tiny_table, tiny_data, soft, margin=0.5, threshold_optimizer="adam", arch_lr=0.05)
    start = tiny_table.bounds()[1]
    result = s.run()
    assert result.repair is None  # a soft loss never repairs
    assert result.table_ms < start  # the λ·log E[LAT] term switched subsets off
    assert all(row["latency_weight"] == 5.0 for row in result.history)


@pytest.mark.slow
def test_the_search_itself_lands_near_the_target(tiny_table: LatencyTable, tiny_data: Data) -> None:
    lo, hi = searcher_class("singlepath").table_bounds(tiny_table)
    hard = HardTarget(lo + 0.5 * (hi - lo), "eq", 0.03)
    s = _searcher(tiny_table, tiny_data, hard, epochs=4, bn_calib_batches=2)
    result = s.run()
    assert abs(result.proposed_ms / hard.target_ms - 1) <= 2 * hard.tolerance, result.proposed_ms
    assert result.history[-1]["argmax_acc"] > 0.3  # chance is 0.1


def test_spaces_it_refuses_and_narrows(tiny_data: Data) -> None:
    cls = searcher_class("singlepath")
    with pytest.raises(ValueError, match="no MBConv candidate"):
        cls.check_space(create_space("spos-shufflenet", resolution=32, classes=10))
    with pytest.raises(ValueError, match="singlepath searches"):
        cls.check_space(create_space("darts", resolution=8, classes=10, C=8, cells=3))
    fbnet = flops_table(create_space("fbnet", resolution=16, width=0.25, classes=10))
    narrow = cls.usable_table(fbnet)
    assert cls.table_bounds(fbnet) == narrow.bounds()
    grouped = fbnet.space.candidates.index("ir_k3_e1_g2")
    assert not bool(narrow.mask[:, grouped].any()) and bool(fbnet.mask[:, grouped].any())
    s = create_searcher(
        "singlepath",
        table=fbnet,
        data=tiny_data,
        config=cls.Config(epochs=2, warmup_epochs=1),
        latency=None,
    )
    assert torch.equal(s.table.mask, narrow.mask)


def test_holes_only_in_candidates_it_cannot_hold_are_no_hole_to_it() -> None:
    space = create_space("fbnet", resolution=16, width=0.25, classes=10)
    cls = searcher_class("singlepath")
    held = cls.usable_table(flops_table(space)).mask  # no grouped, no e1 blocks
    cells = {op.key: (1.0, "measured") for op in space.fixed_ops()}
    for row, layer in enumerate(space.layers()):
        for col, c in enumerate(layer.choices):
            if c.op is not None and bool(held[row, col]):
                cells[c.op.key] = (1.0, "measured")
    holes = LatencyTable.from_cells(space, cells)  # the others unmeasured
    with pytest.raises(ValueError, match="have no latency"):
        holes.check()
    cls.usable_table(holes).check()  # what it reads is complete


def test_sgd_thresholds_step_with_the_gradient(tiny_table: LatencyTable, tiny_data: Data) -> None:
    """With SGD (no momentum on the first step) a threshold moves by lr x its gradient, so
    an indicator that saves more latency moves further: Adam would move all alike."""
    s = _searcher(tiny_table, tiny_data, SoftLatency("singlepath", lam=5.0),
                  threshold_optimizer="sgd", arch_lr=0.01)  # fmt: skip
    x, y = next(iter(tiny_data.train.batches(32, 0)))
    s.arch.arm(s.config.margin)
    before = s.arch.t.detach().clone()
    s.weight_step(x, y, warmup=False)
    assert s.arch.t.grad is not None
    torch.testing.assert_close(s.arch.t.detach() - before, -0.01 * s.arch.t.grad)
    with pytest.raises(ValueError, match="threshold_optimizer"):
        searcher_class("singlepath").Config(threshold_optimizer="rmsprop")  # type: ignore[call-arg]
