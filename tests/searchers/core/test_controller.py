"""ENAS's controllers: a sample's Σ log p is the sum of its decisions' log-probabilities
(recomputed by teacher forcing the sampled choices), a REINFORCE update moves the
probability of a rewarded choice the right way, and the cell controller only yields
valid DARTS genotypes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from searchers.core.cell_controller import INPUTS, CellController
from searchers.core.controller import Controller, State
from searchers.core.genotype import NONE, decision
from searchers.core.reinforce import Draw, Reinforce, Reward, policy_grads
from searchers.spaces.darts import EDGES, OPS, STEPS

MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)


def _step(c: Controller | CellController, token: int, state: State) -> State:
    return c.lstm(c.embed(torch.tensor([token])), state)


def test_a_chain_samples_log_prob_is_the_sum_of_its_decisions() -> None:
    c = Controller(MASK, hidden=8)
    choices, logp, entropy = c.sample_with_logp(torch.Generator().manual_seed(3))
    state, token, want, h_want = c.start(), MASK.shape[1], 0.0, 0.0
    for d, choice in enumerate(choices):  # teacher forcing: feed the sampled choices
        state = _step(c, token, state)
        raw = c.head(state[0])[0]
        logits = (2.5 * torch.tanh(raw / 5.0)).masked_fill(~MASK[d], float("-inf"))
        log_p = F.log_softmax(logits, dim=0)
        want += float(log_p[choice])
        h_want += float(-(log_p.exp() * log_p.nan_to_num(neginf=0.0)).sum())
        token = choice
    assert float(logp) == pytest.approx(want, abs=1e-5)
    assert float(entropy) == pytest.approx(h_want, abs=1e-5)


def _cell_mask() -> torch.Tensor:
    mask = torch.ones(2 * EDGES, len(OPS), dtype=torch.bool)
    mask[3, OPS.index("sep_conv_3x3")] = False  # an op the supernet does not offer there
    return mask


def _forced_cell_logp(c: CellController, pairs_of: list[list[tuple[str, int]]]) -> float:
    """Σ log p of a genotype fed back in the controller's order (in_1, in_2, op_1, op_2)."""
    state, token, total = c.start(), INPUTS + len(OPS), 0.0
    for kind, pairs in enumerate(pairs_of):
        for node in range(STEPS):
            (op_a, a), (op_b, b) = pairs[2 * node : 2 * node + 2]
            for src, others in ((a, []), (b, [a])):
                state = _step(c, token, state)
                ok = torch.tensor([j < node + 2 and j not in others for j in range(INPUTS)])
                logits = (2.5 * torch.tanh(c.input_head(state[0])[0] / 5.0)).masked_fill(~ok, -1e9)
                total += float(F.log_softmax(logits, 0)[src])
                token = src
            for op, src in ((op_a, a), (op_b, b)):
                state = _step(c, token, state)
                ok = c.legal[decision(kind, node, src)].clone()
                ok[NONE] = False
                logits = (2.5 * torch.tanh(c.op_head(state[0])[0] / 5.0)).masked_fill(~ok, -1e9)
                total += float(F.log_softmax(logits, 0)[OPS.index(op)])
                token = INPUTS + OPS.index(op)
    return total


def test_the_cell_controller_yields_valid_genotypes_and_their_log_prob() -> None:
    mask = _cell_mask()
    c = CellController(mask, hidden=8)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        g, logp, entropy = c.sample_with_logp(gen)
        for kind, pairs in enumerate((g.normal, g.reduce)):
            assert len(pairs) == 2 * STEPS
            for node in range(STEPS):
                (op_a, a), (op_b, b) = pairs[2 * node : 2 * node + 2]
                assert a != b and max(a, b) < node + 2  # two distinct earlier states
                for op, src in ((op_a, a), (op_b, b)):
                    assert op != "none" and mask[decision(kind, node, src), OPS.index(op)]
        want = _forced_cell_logp(c, [list(g.normal), list(g.reduce)])
        assert float(logp) == pytest.approx(want, abs=1e-4) and float(entropy) > 0
        cols = c.columns(g)
        assert sum(col != NONE for col in cols) == 4 * STEPS  # 2 edges x 4 nodes x 2 types
    greedy = c.argmax()
    assert greedy == c.argmax() and len(greedy) == 2 * EDGES
    p = c.probs()
    assert torch.allclose(p.sum(1), torch.ones(2 * EDGES)) and torch.all(p[~mask] == 0)


def _first_p(c: Controller, col: int) -> float:
    """p(decision 0 = col): the first decision reads only the start token."""
    with torch.no_grad():
        h, _ = _step(c, c.legal.shape[1], c.start())
        return float(F.softmax(c.shaped(c.head(h)[0], c.legal[0]), 0)[col])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_reinforce_moves_a_rewarded_choice(sign: float) -> None:
    """Reward `sign` when decision 0 picks column 2, else 0: p(2) rises, or falls."""
    torch.manual_seed(0)
    c = Controller(MASK, hidden=8)
    opt = torch.optim.Adam(c.parameters(), lr=0.05, betas=(0.0, 0.999))
    rl, gen = Reinforce(Reward(None), decay=0.9), torch.Generator().manual_seed(0)
    before = _first_p(c, 2)
    for _ in range(50):
        draws, accs = [], []
        for _ in range(4):
            choices, logp, entropy = c.sample_with_logp(gen)
            draws.append(Draw([], 0.0, logp, entropy))
            accs.append(sign * float(choices[0] == 2))
        opt.zero_grad()
        params = list(c.parameters())
        for p, g in zip(params, policy_grads(rl.loss(draws, accs), params), strict=True):
            p.grad = g
        opt.step()
    after = _first_p(c, 2)
    assert (after - before) * sign > 0.2, (before, after)
