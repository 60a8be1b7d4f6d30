"""Architecture parameters as objects: what a searcher decides, and how it samples.

Every kind answers the same questions over a `[decisions x candidates]` grid laid on
the latency table's candidate axis (illegal cells masked):

    arch.probs()        # [decisions x candidates], 0 where illegal
    arch.layer_probs()  # the same per table layer (cells share a decision per edge)
    arch.sample(gen)    # one candidate column per decision
    arch.argmax()       # the most probable column per decision
    arch.parameters()   # what an architecture optimiser updates (none for samplers)

| kind | decides by | papers |
|---|---|---|
| `Alpha` | learnt logits per decision (chain layer, cell edge) | ProxylessNAS, FBNet, DARTS |
| `EdgeAlpha` | `Alpha` + β per edge, normalised over the edges entering a node | PC-DARTS |
| `Uniform` | uniform over the legal candidates | SPOS, One-Shot, SMASH |
| `Fair` | m paths per step, each candidate of each layer exactly once | FairNAS |
| `Controller` | an LSTM sampling one decision after another | ENAS |
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ArchParams(nn.Module):
    """A `[decisions x candidates]` legality mask; `layer_of[l]` is the decision table
    layer l follows (the identity for chain spaces)."""

    learnable = False

    def __init__(self, mask: torch.Tensor, layer_of: Sequence[int] | None = None):
        super().__init__()
        if mask.dim() != 2 or not bool(mask.any(dim=1).all()):
            raise ValueError("mask: need [decisions x candidates] with a legal cell per row")
        layers = list(range(len(mask))) if layer_of is None else list(layer_of)
        self.register_buffer("mask", mask.bool().clone())
        self.register_buffer("layer_of", torch.tensor(layers, dtype=torch.long))

    @property
    def legal(self) -> torch.Tensor:
        return self.mask  # type: ignore[return-value]

    def logits(self) -> torch.Tensor:
        return torch.zeros(self.legal.shape, device=self.legal.device)

    def probs(self, temperature: float = 1.0) -> torch.Tensor:
        """Softmax over each decision's legal candidates; exactly 0 on illegal cells."""
        return masked_softmax(self.logits() / temperature, self.legal)

    def layer_probs(self, temperature: float = 1.0) -> torch.Tensor:
        return self.probs(temperature)[self.layer_of]  # type: ignore[index]

    def to_layers(self, decisions: Sequence[int]) -> list[int]:
        return [int(decisions[d]) for d in self.layer_of.tolist()]  # type: ignore[operator]

    def sample(self, gen: torch.Generator | None = None) -> list[int]:
        p = self.probs().detach().cpu()
        return [int(i) for i in torch.multinomial(p, 1, generator=gen).squeeze(1)]

    def argmax(self) -> list[int]:
        return [int(i) for i in self.probs().detach().argmax(dim=1)]

    def entropy(self) -> float:
        """Mean entropy per decision over its legal candidates, as a fraction of the
        uniform distribution's (1.0 = uniform, 0.0 = decided)."""
        p = self.probs().detach()
        h = -(p * torch.log(p.clamp_min(1e-30))).sum(dim=1)
        h_max = torch.log(self.legal.sum(dim=1).double()).clamp_min(1e-30)
        return float((h.double() / h_max).mean())


class Alpha(ArchParams):
    """Learnt logits α per decision, zero-initialised (uniform at the start)."""

    learnable = True

    def __init__(self, mask: torch.Tensor, layer_of: Sequence[int] | None = None):
        super().__init__(mask, layer_of)
        self.alpha = nn.Parameter(torch.zeros(mask.shape))

    def logits(self) -> torch.Tensor:
        return self.alpha


class EdgeAlpha(Alpha):
    """PC-DARTS: α per op and β per edge; an edge's weight is softmax(β) over the edges
    that enter the same node (`node_of[decision]`), and its genotype score is α·β."""

    def __init__(
        self, mask: torch.Tensor, node_of: Sequence[int], layer_of: Sequence[int] | None = None
    ):
        super().__init__(mask, layer_of)
        if len(node_of) != len(mask):
            raise ValueError(f"node_of: one node per decision ({len(mask)}), got {len(node_of)}")
        self.register_buffer("node_of", torch.tensor(list(node_of), dtype=torch.long))
        self.beta = nn.Parameter(torch.zeros(len(mask)))

    def edge_weights(self) -> torch.Tensor:
        """softmax(β) within each node's incoming edges: [decisions]."""
        nodes: torch.Tensor = self.node_of  # type: ignore[assignment]
        same = nodes[:, None] == nodes[None, :]  # [decisions x decisions]
        scores = self.beta[None, :].expand(len(nodes), -1).masked_fill(~same, -math.inf)
        return F.softmax(scores, dim=1).diagonal()


class Uniform(ArchParams):
    """Uniform sampling over the legal candidates (train-then-select families): it has
    no preferred architecture, so `argmax` is refused; a selector decides."""

    def argmax(self) -> list[int]:
        raise ValueError("a uniform sampler prefers no architecture; use a selector")


class Fair(Uniform):
    """FairNAS strict fairness: `sample_fair` returns m architectures in which every legal
    candidate of every decision appears exactly once, m = the most legal candidates of a
    decision. A decision with fewer legal candidates (a layer where `zero` or `skip` is
    illegal) fills its remaining slots with random legal picks marked as fillers: they
    run with frozen weights, so every candidate is still trained exactly once per step."""

    def sample_fair(
        self, gen: torch.Generator | None = None
    ) -> tuple[list[list[int]], list[list[bool]]]:
        """(paths, learn): m column lists, and per path and decision whether that
        candidate is trained (False for the fillers)."""
        legal: torch.Tensor = self.legal
        m = int(legal.sum(dim=1).max())
        paths = [[0] * len(legal) for _ in range(m)]
        learn = [[True] * len(legal) for _ in range(m)]
        for d, row in enumerate(legal.cpu()):
            cols = torch.nonzero(row).flatten()
            order = cols[torch.randperm(len(cols), generator=gen)].tolist()
            extra = cols[torch.randint(len(cols), (m - len(cols),), generator=gen)].tolist()
            for k, col in enumerate(order + extra):
                paths[k][d] = int(col)
                learn[k][d] = k < len(order)
        return paths, learn


def masked_softmax(logits: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    return F.softmax(logits.masked_fill(~legal, float("-inf")), dim=-1)


@torch.no_grad()
def keep_sampled_mass(
    alpha: torch.Tensor, before: dict[int, tuple[list[int], torch.Tensor]]
) -> None:
    """Shift each decision's sampled α (`before[row] = (columns, α before the step)`) by a
    common offset so that Σ exp(α) over them is what it was: the probabilities of the
    candidates not sampled do not move with this step's gradient (ProxylessNAS' `two`
    mode, DenseNAS' two paths)."""
    for row, (cols, old) in before.items():
        alpha[row, cols] -= torch.logsumexp(alpha[row, cols], 0) - torch.logsumexp(old, 0)
