"""ENAS's learned controller (Pham et al., ICML 2018) as architecture parameters.

An LSTM cell walks the decisions in order; at each it reads the embedding of the
previous choice, and a linear head gives logits over the candidates. As in ENAS the
logits are shaped as c·tanh(logits / T) (temperature T, tanh constant c) so that early
in training no candidate is ruled out; illegal cells are masked. REINFORCE needs the
log-probability and the entropy of a sample, so `sample_with_logp` keeps the graph.

`Controller` walks a chain space's decisions (one candidate per layer: ENAS' macro
space with our candidates); `CellController` (core/cell_controller.py) walks the DARTS
cell's (input, op) pairs (ENAS' micro space). Both share `LstmPolicy`: the LSTM, the
shaped logits, and how one choice is drawn.

The controller's distribution is autoregressive, so `probs()` is not a closed form: it
is the marginal frequency of each candidate over `MARGINAL_SAMPLES` seeded samples (an
estimate, for reports, the expected latency and the repair's tie-breaks; a REINFORCE
search scores samples, not marginals).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from searchers.core.arch import ArchParams

MARGINAL_SAMPLES = 64
State = tuple[torch.Tensor, torch.Tensor]


class LstmPolicy(ArchParams):
    """The LSTM and the choice rule the ENAS controllers share; subclasses add the
    embedding of their tokens and their heads, then `init_uniform()`."""

    learnable = True

    def __init__(
        self,
        mask: torch.Tensor,
        layer_of: Sequence[int] | None,
        hidden: int,
        temperature: float,
        tanh_c: float,
    ):
        super().__init__(mask, layer_of)
        if hidden < 1 or temperature <= 0 or tanh_c <= 0:
            raise ValueError("controller: hidden >= 1, temperature > 0 and tanh_c > 0")
        self.hidden, self.temperature, self.tanh_c = hidden, temperature, tanh_c
        self.lstm = nn.LSTMCell(hidden, hidden)

    def init_uniform(self) -> None:
        for p in self.parameters():  # ENAS: uniform(-0.1, 0.1)
            nn.init.uniform_(p, -0.1, 0.1)

    def start(self) -> State:
        z = torch.zeros(1, self.hidden, device=self.legal.device)
        return z, z

    def shaped(self, raw: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        """ENAS' c·tanh(raw / T), disallowed cells at −inf: the logits of one choice."""
        logits = self.tanh_c * torch.tanh(raw / self.temperature)
        return logits.masked_fill(~allowed, float("-inf"))

    def choose(
        self, logits: torch.Tensor, gen: torch.Generator | None, greedy: bool
    ) -> tuple[int, torch.Tensor, torch.Tensor]:
        """(choice, log p(choice), entropy) of one decision from its shaped logits."""
        log_p = F.log_softmax(logits, dim=0)
        p = log_p.exp()
        if greedy:
            choice = int(p.argmax())
        else:
            choice = int(torch.multinomial(p.detach().cpu(), 1, generator=gen))
        entropy = -(p * log_p.masked_fill(p == 0, 0.0)).sum()
        return choice, log_p[choice], entropy

    def probs(self, temperature: float = 1.0) -> torch.Tensor:
        """Marginal frequencies over seeded samples (an estimate; see the module doc)."""
        legal: torch.Tensor = self.legal
        counts = torch.zeros(legal.shape, device=legal.device)
        gen = torch.Generator().manual_seed(0)
        rows = torch.arange(len(legal), device=legal.device)
        for _ in range(MARGINAL_SAMPLES):
            counts[rows, torch.tensor(self.sample(gen), device=legal.device)] += 1
        return counts / MARGINAL_SAMPLES


class Controller(LstmPolicy):
    """One candidate per decision (a chain space's layers), in order."""

    def __init__(
        self,
        mask: torch.Tensor,
        layer_of: Sequence[int] | None = None,
        hidden: int = 64,
        temperature: float = 5.0,
        tanh_c: float = 2.5,
    ):
        super().__init__(mask, layer_of, hidden, temperature, tanh_c)
        n = mask.shape[1]
        self.embed = nn.Embedding(n + 1, hidden)  # index n: the start token
        self.head = nn.Linear(hidden, n)
        self.init_uniform()

    def sample_with_logp(
        self, gen: torch.Generator | None = None, greedy: bool = False
    ) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """(choices, Σ log p(choice), Σ entropy), differentiable in the controller."""
        legal: torch.Tensor = self.legal
        state = self.start()
        token = torch.full((1,), legal.shape[1], dtype=torch.long, device=legal.device)
        choices, logp, entropy = [], [], []
        for d in range(len(legal)):
            state = self.lstm(self.embed(token), state)
            choice, lp, h = self.choose(self.shaped(self.head(state[0])[0], legal[d]), gen, greedy)
            choices.append(choice)
            logp.append(lp)
            entropy.append(h)
            token = torch.tensor([choice], device=legal.device)
        return choices, torch.stack(logp).sum(), torch.stack(entropy).sum()

    def sample(self, gen: torch.Generator | None = None) -> list[int]:
        with torch.no_grad():
            return self.sample_with_logp(gen)[0]

    def argmax(self) -> list[int]:
        """Greedy decoding: the most probable candidate at each step, given the earlier."""
        with torch.no_grad():
            return self.sample_with_logp(greedy=True)[0]
