"""ENAS's micro controller (Pham et al., ICML 2018) over the DARTS cell space.

One LSTM walks both cell types, normal then reduce; for each of the 4 nodes it samples,
as ENAS does, the node's two inputs and then their two ops:

    input_1 ~ p(· | h) over the node + 2 earlier states
    input_2 ~ p(· | h) over the same states but input_1
    op_i    ~ p(· | h) over the legal non-`none` ops of edge (node, input_i)

each step reading the embedding of the previous token (one table: inputs, then ops,
then a start token). Logits are ENAS' c·tanh(raw/T). The result is a `Genotype` with
Σ log p and Σ entropy of its 32 decisions, differentiable in the controller; a node's
pairs are kept in the order drawn (input_1 first), which a genotype does not care about.

Departures from ENAS, and why:
- input_2 is masked to differ from input_1: a DARTS genotype keeps two distinct edges
  per node (the supernet has one edge per (node, input), and the table prices edges);
  ENAS allows the same input twice (its node then sums two ops on one state).
- inputs come from a linear head over positions, not ENAS' attention over the earlier
  nodes' LSTM outputs; with 2..5 inputs per node the pointer buys little.
- the two cell types are one sequence (ENAS samples them with two calls from zeros).
- the op set is DARTS' 7 non-`none` ops (ENAS: 5), restricted to what the supernet offers.

As `ArchParams` it answers on the supernet's [2·14 decisions x ops] grid: `sample()` is
the op column per decision (`none` on a dropped edge), `argmax()` the greedy genotype's,
`probs()` the marginal frequencies over seeded samples (core/controller.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from searchers.core.controller import LstmPolicy
from searchers.core.genotype import NONE, decision, edge_ops
from searchers.spaces.darts import EDGES, OPS, STEPS, Genotype

INPUTS = STEPS + 1  # the most inputs a node has: 2 cell inputs + 3 earlier nodes


class CellController(LstmPolicy):
    def __init__(
        self,
        mask: torch.Tensor,
        layer_of: Sequence[int] | None = None,
        hidden: int = 64,
        temperature: float = 5.0,
        tanh_c: float = 2.5,
    ):
        super().__init__(mask, layer_of, hidden, temperature, tanh_c)
        if mask.shape != (2 * EDGES, len(OPS)):
            raise ValueError(f"mask: the darts cell grid is [{2 * EDGES} x {len(OPS)}]")
        ops = mask.clone()
        ops[:, NONE] = False
        if not bool(ops.any(dim=1).all()):
            raise ValueError("mask: every edge needs an op other than none")
        self.register_buffer("ops_ok", ops)
        self.embed = nn.Embedding(INPUTS + len(OPS) + 1, hidden)  # inputs, ops, start
        self.input_head = nn.Linear(hidden, INPUTS)
        self.op_head = nn.Linear(hidden, len(OPS))
        self.init_uniform()

    def sample_with_logp(
        self, gen: torch.Generator | None = None, greedy: bool = False
    ) -> tuple[Genotype, torch.Tensor, torch.Tensor]:
        """(genotype, Σ log p, Σ entropy) over its 32 decisions, differentiable."""
        device = self.legal.device
        state = self.start()
        token = INPUTS + len(OPS)  # start
        logp, entropy = [], []
        pairs: list[list[tuple[str, int]]] = [[], []]

        def step(head: nn.Linear, allowed: torch.Tensor, offset: int) -> int:
            nonlocal state, token
            state = self.lstm(self.embed(torch.tensor([token], device=device)), state)
            logits = self.shaped(head(state[0])[0], allowed)
            choice, lp, h = self.choose(logits, gen, greedy)
            logp.append(lp)
            entropy.append(h)
            token = offset + choice
            return choice

        ops_ok: torch.Tensor = self.ops_ok  # type: ignore[assignment]
        for kind in range(2):
            for node in range(STEPS):
                allowed = torch.arange(INPUTS, device=device) < node + 2
                first = step(self.input_head, allowed, 0)
                second = step(
                    self.input_head, allowed & (torch.arange(INPUTS, device=device) != first), 0
                )
                ops = [step(self.op_head, ops_ok[decision(kind, node, src)], INPUTS)
                       for src in (first, second)]  # fmt: skip
                pairs[kind] += [(OPS[ops[0]], first), (OPS[ops[1]], second)]  # as drawn
        g = Genotype(tuple(pairs[0]), tuple(pairs[1]))
        return g, torch.stack(logp).sum(), torch.stack(entropy).sum()

    def genotype(self, gen: torch.Generator | None = None, greedy: bool = False) -> Genotype:
        with torch.no_grad():
            return self.sample_with_logp(gen, greedy)[0]

    def columns(self, g: Genotype) -> list[int]:
        """The op column per decision: the genotype's op on a kept edge, else `none`."""
        kept = edge_ops(g)
        return [kept.get(d, NONE) for d in range(2 * EDGES)]

    def sample(self, gen: torch.Generator | None = None) -> list[int]:
        return self.columns(self.genotype(gen))

    def argmax(self) -> list[int]:
        """The greedy genotype's columns."""
        return self.columns(self.genotype(greedy=True))
