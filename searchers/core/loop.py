"""The search loop every algorithm shares, and the hooks an algorithm overrides.

    for epoch in epochs:
        for step, train batch:                       # seeded order per (seed, epoch)
            weight_step(x, y, warmup)                # the paths `weight_plan` picks
            if past warm-up and step % arch_every:   # differentiable families only
                arch_step(train batch, val batch)    # both: second-order DARTS needs both
                latency controller update            # hard target: the dual step
        epoch record: loss, accuracies (`evaluate`), entropy, E[LAT], argmax latency, λ
    selector (argmax, sample, evolution, random) -> repair into the target if needed

An algorithm is a subclass that sets `name`, `paper`, `Config` and overrides what
differs: `weight_plan` (always), `arch_step` (learnt architectures), `build_arch`
(samplers, controllers), `evaluate`, `selector`. Train-then-select families (SPOS,
One-Shot, SMASH) keep the default `arch_step` (nothing) and choose with a selector.
Weights are trained on the train split; architecture steps, per-epoch accuracies and
selection read the search-validation split; nothing here reads the test split except
the final `test_acc` of the result, reported and never used to choose.
"""

from __future__ import annotations

import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from searchers.core.arch import Alpha, ArchParams
from searchers.core.checkpoint import Checkpoint, run_key
from searchers.core.config import SearchConfig
from searchers.core.distributed import Dist, local_batchnorm, sync_batchnorm, unsharded
from searchers.core.evaluate import accuracy
from searchers.core.init import share_candidate_init, zero_residual_bn
from searchers.core.losses import HardTarget, LatencyLoss
from searchers.core.mixed import Mode
from searchers.core.selectors import ArgmaxSelector, SelectContext, Selector
from searchers.core.supernet import ChainSupernet, Supernet
from searchers.data import Data, epoch_seed
from searchers.latency import LatencyTable
from searchers.spaces import SearchSpace, list_spaces, space_class
from searchers.spaces._chain import ChainSpace

Progress = Callable[[dict[str, Any]], None]


@dataclass
class SearchResult:
    columns: list[int]  # table column per layer, inside the target
    choices: tuple[str, ...]
    table_ms: float
    proposed_ms: float  # what the search itself chose, before any repair
    history: list[dict[str, Any]]
    selection: dict[str, Any]
    repair: dict[str, Any] | None
    val_acc: float  # search-validation accuracy with the shared weights
    test_acc: float  # test accuracy with the shared weights (reported, never used)
    arch: Any = None  # the space's parsed architecture (chain: `choices`; darts: a Genotype)


class Searcher(ABC):
    name: ClassVar[str]
    paper: ClassVar[str] = ""
    Config: ClassVar[type[SearchConfig]] = SearchConfig
    # the spaces its supernet takes (a plain `type`: the space kinds are abstract classes)
    space_kind: ClassVar[type] = ChainSpace

    def __init__(
        self,
        table: LatencyTable,
        data: Data,
        config: SearchConfig,
        latency: LatencyLoss | None,
        device: str = "cpu",
    ):
        if not isinstance(config, self.Config):
            raise ValueError(f"config: {self.name} takes a {self.Config.__name__}")
        self.check_space(table.space)
        if table.space.classes != data.classes:
            raise ValueError(
                f"classes: the space has {table.space.classes} outputs, the dataset "
                f"{data.classes} classes; pass --classes {data.classes}"
            )
        self.table, self.data, self.config, self.latency = table, data, config, latency
        self.space, self.device = table.space, torch.device(device)
        self.hard = latency if isinstance(latency, HardTarget) else None
        self.dist = Dist.current()  # N ranks: one global batch in N shards (distributed.py)
        self.dist.check_batch(data.batch_size)
        torch.manual_seed(config.seed)
        self.net = self.new_supernet()
        self.init_weights()
        self.arch = self.build_arch().to(self.device)
        self.share_start()
        self.gen = torch.Generator().manual_seed(config.seed + 1)
        self.setup_optimizers()
        self.epoch = self.step = self.val_index = 0
        self.loss_sum = 0.0
        self.history: list[dict[str, Any]] = []
        self.select_progress: Progress | None = None  # per generation of an evolution
        calib = data.train.batches(data.batch_size, epoch_seed(config.seed, 0, 2), drop_last=True)
        self.calibration = [b for _, b in zip(range(config.bn_calib_batches), calib, strict=False)]
        self.dist.same_object("run (searcher, config, space, table, data)", self.key())

    @classmethod
    def usable_table(cls, table: LatencyTable) -> LatencyTable:
        """The part of the table this searcher reads (Single-Path NAS: the candidates a
        super-kernel holds); `hwlat search` checks only its cells for holes."""
        return table

    @classmethod
    def table_bounds(cls, table: LatencyTable) -> tuple[float, float]:
        """(min, max) table latency of the architectures this searcher can export."""
        return table.bounds()

    @classmethod
    def check_space(cls, space: SearchSpace) -> None:
        """Refuse a space this algorithm's supernet cannot take, naming those it can."""
        if not isinstance(space, cls.space_kind):
            fits = [n for n in list_spaces() if issubclass(space_class(n), cls.space_kind)]
            raise ValueError(f"space: {cls.name} searches {', '.join(fits)}; not {space.name}")

    def setup_optimizers(self) -> None:
        """SGD with a cosine schedule over `epochs` for the weights, the architecture's own."""
        c = self.config
        steps = c.epochs * self.data.steps_per_epoch()
        self.w_opt = torch.optim.SGD(
            self.net.parameters(), lr=c.lr, momentum=c.momentum,
            nesterov=c.momentum > 0, weight_decay=c.weight_decay,
        )  # fmt: skip
        self.w_sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.w_opt, max(steps, 1))
        self.a_opt = self.arch_optimizer() if self.arch.learnable else None

    # --- what an algorithm defines ---------------------------------------------------
    @abstractmethod
    def weight_plan(self, warmup: bool) -> Sequence[Mode | None]:
        """How every mixed op runs in this weight step."""

    def arch_step(
        self, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor]
    ) -> None:
        """One update of the architecture; train-then-select families have none."""
        return None

    def build_supernet(self) -> Supernet:
        return ChainSupernet(self.space)

    def new_supernet(self) -> Supernet:
        """`build_supernet` on the run's device; on N ranks its BN over the global batch."""
        net = self.build_supernet()
        if self.dist.active:
            sync_batchnorm(net)
        return net.to(self.device)

    def share_start(self) -> None:
        """Rank 0's initial weights, BN statistics and architecture on every rank (they
        are seeded alike; this makes it a guarantee, as DDP does)."""
        self.dist.broadcast_([*self.net.state_dict().values(), *self.arch.state_dict().values()])

    def build_arch(self) -> ArchParams:
        return Alpha(self.net.mask(), self.net.layer_of())

    def arch_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        return torch.optim.Adam(
            self.arch.parameters(), lr=c.arch_lr, betas=(c.arch_beta1, 0.999),
            weight_decay=c.arch_weight_decay,
        )  # fmt: skip

    def evaluate(self) -> dict[str, float]:
        """Per-epoch accuracies on the search-validation split (shared weights)."""
        return {"argmax_acc": self.score(self.arch.to_layers(self.arch.argmax()))}

    def selector(self) -> Selector:
        return ArgmaxSelector()

    def forward(self, x: torch.Tensor, plan: Sequence[Mode | None]) -> torch.Tensor:
        out: torch.Tensor = self.net(x, plan)
        return out

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `extra_state` saved."""
        return None

    # --- shared ------------------------------------------------------------------------
    def init_weights(self) -> None:
        for mixed in self.net.mixed():
            if self.config.shared_init:
                share_candidate_init(mixed.candidates)
            if self.config.zero_residual_bn:
                zero_residual_bn(mixed.candidates)

    def weight_step(self, x: torch.Tensor, y: torch.Tensor, warmup: bool) -> float:
        loss = F.cross_entropy(self.forward(x, self.weight_plan(warmup)), y)
        self.w_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.step_weights()
        return float(loss.detach())

    def step_weights(self) -> None:
        """The weights' step on the gradients in `.grad`: on N ranks averaged first (each
        holds its shard's), then clipped, so the step is the global batch's."""
        self.dist.average_grads(self.net.parameters())
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.w_opt.step()

    def arch_update(self, loss: torch.Tensor) -> None:
        """Architecture gradients only: no weight gradient is computed and thrown away."""
        assert self.a_opt is not None, "arch_update needs learnable architecture parameters"
        params = self.arch_params()
        self.apply_arch_grads(torch.autograd.grad(loss, params, allow_unused=True))

    def arch_params(self) -> list[nn.Parameter]:
        return [p for p in self.arch.parameters() if p.requires_grad]

    def apply_arch_grads(self, grads: Sequence[torch.Tensor | None]) -> None:
        """One architecture optimiser step with these gradients (`arch_params` order)."""
        assert self.a_opt is not None, "arch_update needs learnable architecture parameters"
        for p, g in zip(self.arch_params(), self.dist.average(grads), strict=True):
            p.grad = g
        self.a_opt.step()

    def expected_ms(self) -> torch.Tensor:
        """The latency the architecture loss sees: E[LAT] under p for the papers' soft
        forms, under the sharpened p for a hard target (core/losses.py)."""
        tau = self.hard.temperature if self.hard is not None else 1.0
        return self.table.expected(self.arch.layer_probs(tau))

    def plan_for(self, columns: Sequence[int]) -> Sequence[Mode | None]:
        return self.net.single_plan(columns)

    @property
    def alpha(self) -> torch.Tensor:
        """The learnt logits of `Alpha`-kind architecture parameters."""
        assert isinstance(self.arch, Alpha), f"{self.name}: no per-decision logits"
        return self.arch.alpha

    def score(self, columns: Sequence[int], split: str = "val") -> float:
        """Accuracy of one architecture with the shared weights, its BN re-estimated."""
        return self.plan_accuracy(self.plan_for(columns), split)

    def plan_accuracy(self, plan: Sequence[Mode | None], split: str = "val") -> float:
        """Accuracy of the supernet run by `plan` on a split, BN re-estimated on it first."""
        part, d, dev = self.data.val if split == "val" else self.data.test, self.dist, self.device
        if not (d.active and self.calibration):  # one process, or BN on batch statistics:
            with unsharded():  # every rank scores the whole split
                batches = ((x.to(dev), y.to(dev)) for x, y in part.batches(256))
                calib = [(x.to(dev), y) for x, y in self.calibration] or None
                return accuracy(self.net, self.forward, plan, batches, calib)
        # N ranks: BN re-estimated on the global calibration batches (shards, synced BN),
        # then every rank scores whole batches, round robin, and the counts are summed
        calib = [(x.to(dev), y) for x, y in (d.shard(*b) for b in self.calibration)]
        mine = itertools.islice(part.batches(256), d.rank, None, d.world)
        batches = ((x.to(dev), y.to(dev)) for x, y in mine)
        return accuracy(self.net, self.forward, plan, batches, calib, d.sum_counts)

    def val_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next search-validation batch: a seeded order per pass, so the k-th batch
        of a run is the same after a resume."""
        val, bs = self.data.val, self.data.batch_size
        n = val.n_batches(bs, drop_last=True)
        pass_, j = divmod(self.val_index, n)
        self.val_index += 1
        order = val.batches(bs, epoch_seed(self.config.seed, pass_, 1), drop_last=True)
        x, y = self.dist.shard(*next(b for i, b in enumerate(order) if i == j))
        return x.to(self.device), y.to(self.device)

    def exported_ms(self) -> float:
        """The table latency of what the search would export now (chain: the argmax)."""
        return self.table.exact(self.arch.to_layers(self.arch.argmax()))

    def relaxed_ms(self) -> float:
        """E[LAT] under the architecture's probabilities (reported each epoch)."""
        return float(self.table.expected(self.arch.layer_probs().detach().cpu().double()))

    def after_arch_step(self) -> None:
        if self.latency is not None:
            self.latency.update(self.exported_ms())

    def in_warmup(self) -> bool:
        return self.epoch < self.config.warmup_epochs

    def total_epochs(self) -> int:
        return self.config.epochs

    def run(
        self, progress: Progress | None = None, checkpoint: Checkpoint | None = None
    ) -> SearchResult:
        self.train_epochs(self.config.epochs, progress, checkpoint)
        return self.finish()

    def train_epochs(
        self, end: int, progress: Progress | None, checkpoint: Checkpoint | None
    ) -> None:
        """The loop up to epoch `end` (from where a resume left it)."""
        c = self.config
        while self.epoch < end:
            warmup, started = self.in_warmup(), time.perf_counter()
            for i, (x, y) in enumerate(self.data.train_batches(c.seed, self.epoch)):
                if i < self.step:
                    continue  # resumed mid-epoch: these steps are done
                x, y = self.dist.shard(x, y)  # this rank's rows (all of them on one process)
                x, y = x.to(self.device), y.to(self.device)
                self.loss_sum += self.dist.mean(self.weight_step(x, y, warmup))
                self.w_sched.step()
                if not warmup and self.a_opt is not None and (i + 1) % c.arch_every == 0:
                    self.arch_step((x, y), self.val_batch())
                    self.after_arch_step()
                self.step = i + 1
                if checkpoint and self.step % c.checkpoint_every == 0:
                    self.save(checkpoint)
            self.check_ranks(f"after epoch {self.epoch + 1}")
            row = self.epoch_record(warmup, time.perf_counter() - started)
            self.history.append(row)
            self.epoch, self.step, self.loss_sum = self.epoch + 1, 0, 0.0
            if checkpoint:
                self.save(checkpoint)
            if progress:
                progress(row)

    def epoch_record(self, warmup: bool, seconds: float) -> dict[str, Any]:
        learnt = not isinstance(self.arch, Alpha) or not warmup
        row: dict[str, Any] = {
            "epoch": self.epoch + 1,
            "epochs": self.total_epochs(),
            "warmup": warmup,
            "train_loss": self.loss_sum / max(self.data.steps_per_epoch(), 1),
            **self.evaluate(),
            "entropy": self.arch.entropy(),
            "expected_ms": self.relaxed_ms(),
            "controlled_ms": float(self.expected_ms().detach()),
            "latency_weight": self.latency.weight() if self.latency is not None else 0.0,
            "seconds": round(seconds, 2),
        }
        if self.arch.learnable:
            probs = self.arch.probs().detach().cpu()
            row["argmax_ms"] = self.exported_ms()
            row["probs"] = [[round(float(p), 4) for p in r] for r in probs] if learnt else None
        return row

    def finish(self) -> SearchResult:
        ctx = SelectContext(self.table, self.arch, self.score, self.hard, self.gen)
        raw = self.selector().select(ctx)
        final = ctx.fit(raw.columns)
        proposed = raw.proposed or raw.columns
        selection = {"how": raw.how, "considered": raw.considered, **raw.details}
        return self.result(proposed, final, selection, ctx.value(final), self.table.names(final))

    def result(
        self, proposed: list[int], final: list[int], selection: dict[str, Any], val_acc: float,
        arch: Any,
    ) -> SearchResult:  # fmt: skip
        """The result of table columns `final` (what the search proposed before any
        repair: `proposed`), scored on the test split too."""
        return SearchResult(
            columns=final,
            choices=self.table.names(final),
            table_ms=self.table.exact(final),
            proposed_ms=self.table.exact(proposed),
            history=self.history,
            selection=selection,
            repair=self._repair_record(proposed, final),
            val_acc=val_acc,
            test_acc=self.score(final, split="test"),
            arch=arch,
        )

    def _repair_record(self, proposed: list[int], final: list[int]) -> dict[str, Any] | None:
        if final == proposed:
            return None
        before, after = self.table.names(proposed), self.table.names(final)
        layers = self.space.layers()
        return {
            "before_ms": self.table.exact(proposed),
            "after_ms": self.table.exact(final),
            "changed": [
                {"layer": layers[i].name, "from": before[i], "to": after[i]}
                for i in range(len(final))
                if before[i] != after[i]
            ],
        }

    # --- checkpoints -------------------------------------------------------------------
    def key(self) -> dict[str, str]:
        """What identifies this run (a checkpoint of another run is refused)."""
        d = self.data
        return run_key(
            {
                "searcher": self.name,
                "config": asdict(self.config),
                "space": self.space.params(),
                "table": [self.table.fixed_ms, self.table.table.tolist()],
                "data": [d.name, d.data_seed, d.batch_size, len(d.train), len(d.val)],
                "latency": repr(self.latency).split(" lam=")[0] if self.latency else None,
            }
        )

    def state(self) -> dict[str, Any]:
        return {
            "key": self.key(),
            "net": self.net.state_dict(),
            "arch": self.arch.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "w_sched": self.w_sched.state_dict(),
            "a_opt": self.a_opt.state_dict() if self.a_opt else None,
            "gen": self.gen.get_state(),
            "latency": self.latency.state() if self.latency else {},
            "position": [self.epoch, self.step, self.val_index],
            "loss_sum": self.loss_sum,
            "history": self.history,
            "extra": self.extra_state(),
        }

    def resume(self, checkpoint: Checkpoint) -> None:
        """Every rank loads the same file; none goes on (and rank 0 overwrites it) before
        all have."""
        self.load_state(checkpoint.load(self.key()))
        self.dist.barrier()

    def save(self, checkpoint: Checkpoint) -> None:
        """Rank 0 writes: the state is the same on every rank."""
        if self.dist.rank == 0:
            checkpoint.save(self.state())

    # --- N ranks -----------------------------------------------------------------------
    def check_ranks(self, when: str) -> None:
        """Weights, BN statistics, architecture and λ bit-identical on every rank, or stop."""
        lam = torch.tensor([self.latency.weight() if self.latency else 0.0], dtype=torch.float64)
        tensors = [*self.net.state_dict().values(), *self.arch.state_dict().values(), lam]
        self.dist.check_same(f"{when}: weights, architecture or λ", tensors)

    def leave_group(self) -> None:
        """Go on as one process (rank 0 after the search: finalists, export): plain BN,
        whole batches. The process group can be destroyed after."""
        local_batchnorm(self.net)
        self.dist = Dist()

    def load_state(self, s: dict[str, Any]) -> None:
        self.net.load_state_dict(s["net"])
        self.arch.load_state_dict(s["arch"])
        self.w_opt.load_state_dict(s["w_opt"])
        self.w_sched.load_state_dict(s["w_sched"])
        if self.a_opt is not None:
            self.a_opt.load_state_dict(s["a_opt"])
        self.gen.set_state(s["gen"])
        if self.latency is not None:
            self.latency.load_state(s["latency"])
        self.epoch, self.step, self.val_index = s["position"]
        self.loss_sum, self.history = s["loss_sum"], s["history"]
        self.load_extra_state(s["extra"])
