"""How much memory a training step holds: what autograd saves for the backward pass
(activations, unique storages) plus the gradients it leaves. On a CPU PyTorch keeps no
allocator statistics, so this is what the benchmarks and tests compare; it is the part
that grows with the number of candidates when every path runs (the weights themselves
are the same for every searcher)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def step_memory(step: Callable[[], Any], model: nn.Module) -> int:
    """Bytes saved for backward during `step()` plus bytes of gradients after it."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    for p in model.parameters():
        p.grad = None
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    grads = sum(
        p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None
    )
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = sum(n for ptr, n in seen.items() if ptr not in params)  # weights are not activations
    return saved + grads
