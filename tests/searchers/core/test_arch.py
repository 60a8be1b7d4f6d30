"""Architecture parameters: masks, sampling, FairNAS fairness, PC-DARTS β, the ENAS
controller."""

from __future__ import annotations

import pytest
import torch

from searchers.core.arch import Alpha, EdgeAlpha, Fair, Uniform
from searchers.core.controller import Controller

MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [0, 1, 1, 1]], dtype=torch.bool)


def test_alpha_probs_sample_argmax_respect_the_mask() -> None:
    a = Alpha(MASK)
    with torch.no_grad():
        a.alpha.normal_()
        a.alpha[2, 3] = 5.0
    p = a.probs().detach()
    assert torch.all(p[~MASK] == 0) and torch.allclose(p.sum(1), torch.ones(3))
    assert a.argmax()[2] == 3
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        cols = a.sample(gen)
        assert all(MASK[i, c] for i, c in enumerate(cols))
    assert list(a.parameters()) == [a.alpha] and a.learnable
    sharp = a.probs(temperature=0.1).detach()
    assert float(sharp[2, 3]) > float(p[2, 3])  # a lower temperature sharpens


def test_entropy_runs_from_uniform_to_decided() -> None:
    a = Alpha(MASK)
    assert a.entropy() == pytest.approx(1.0)
    with torch.no_grad():
        a.alpha[:, 1] = 30.0
    assert a.entropy() < 1e-6


def test_cells_share_decisions_through_layer_of() -> None:
    a = Alpha(MASK, layer_of=[0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        a.alpha.normal_()
    layers = a.layer_probs()
    assert layers.shape == (6, 4) and torch.equal(layers[0], layers[3])
    assert a.to_layers([2, 0, 1]) == [2, 0, 1, 2, 0, 1]


def test_uniform_prefers_nothing() -> None:
    u = Uniform(MASK)
    assert torch.allclose(u.probs()[0, :3], torch.full((3,), 1 / 3))
    assert list(u.parameters()) == [] and not u.learnable
    with pytest.raises(ValueError, match="selector"):
        u.argmax()


def test_fair_trains_every_candidate_exactly_once_per_step() -> None:
    f = Fair(MASK)
    paths, learn = f.sample_fair(torch.Generator().manual_seed(1))
    assert len(paths) == len(learn) == 4  # the widest decision has 4 legal candidates
    for d, row in enumerate(MASK):
        seen = [p[d] for p in paths]
        assert all(MASK[d, c] for c in seen)
        trained = [p[d] for p, keep in zip(paths, learn, strict=True) if keep[d]]
        assert sorted(trained) == torch.nonzero(row).flatten().tolist()  # exactly once each
    assert sorted(p[1] for p in paths) == [0, 1, 2, 3]  # the full row: no fillers
    assert all(keep[1] for keep in learn)


def test_edge_weights_are_a_softmax_within_each_node() -> None:
    e = EdgeAlpha(MASK, node_of=[0, 0, 1])
    with torch.no_grad():
        e.beta.copy_(torch.tensor([0.0, 1.0, 3.0]))
    w = e.edge_weights().detach()
    assert float(w[0] + w[1]) == pytest.approx(1.0) and float(w[2]) == pytest.approx(1.0)
    assert float(w[1]) > float(w[0])
    with pytest.raises(ValueError, match="node_of"):
        EdgeAlpha(MASK, node_of=[0, 1])


def test_controller_samples_legal_paths_with_a_differentiable_log_probability() -> None:
    torch.manual_seed(0)
    c = Controller(MASK, hidden=16)
    gen = torch.Generator().manual_seed(0)
    choices, logp, entropy = c.sample_with_logp(gen)
    assert all(MASK[i, k] for i, k in enumerate(choices))
    assert logp.requires_grad and float(logp.detach()) < 0 and float(entropy.detach()) > 0
    (-logp).backward()  # REINFORCE: the gradient reaches the LSTM
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in c.parameters())
    greedy = c.argmax()
    assert greedy == c.argmax() and all(MASK[i, k] for i, k in enumerate(greedy))
    p = c.probs()
    assert torch.all(p[~MASK] == 0) and torch.allclose(p.sum(1), torch.ones(3))


def test_a_decision_without_a_legal_candidate_is_refused() -> None:
    with pytest.raises(ValueError, match="legal cell per row"):
        Alpha(torch.tensor([[1, 0], [0, 0]], dtype=torch.bool))
