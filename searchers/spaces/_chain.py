"""Chain spaces: a stem, a sequence of searchable layers, a tail (ProxylessNAS, FBNet, SPOS).

An architecture is one candidate name per searchable layer:
`{"space": "fbnet", "resolution": 224, "width": 1.0, "classes": 1000,
  "choices": ["ir_k3_e1", "skip", ...]}` (a bare list of names is accepted too).
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any

from profiler.ops import OpSpec
from searchers.spaces.base import ArchError, SearchSpace, expect_list

if TYPE_CHECKING:
    from torch import nn


class ChainSpace(SearchSpace):
    """Fixed ops are split into a stem (before the layers) and a tail (after them)."""

    n_stem: int = 1  # how many of the fixed ops come before the searchable layers

    def size(self) -> int:
        return math.prod(len(layer.legal) for layer in self._layers)

    def parse_arch(self, data: Any) -> tuple[str, ...]:
        if isinstance(data, dict):
            self.check_params(data)
            unknown = sorted(set(data) - {"space", "resolution", "width", "classes", "choices"})
            if unknown:
                raise ArchError(f"{unknown[0]}: unknown field in a {self.name} architecture")
            if "choices" not in data:
                raise ArchError("choices: missing (one candidate name per searchable layer)")
            data = data["choices"]
        names = expect_list(data, "choices", len(self._layers))
        for i, (layer, name) in enumerate(zip(self._layers, names, strict=True)):
            if not isinstance(name, str):
                raise ArchError(f"choices[{i}]: expected a candidate name, got {name!r}")
            layer.op(name)  # raises ArchError naming the layer
        return tuple(names)

    def arch_to_json(self, arch: Any) -> dict[str, Any]:
        return {**self.params(), "choices": list(self.parse_arch(arch))}

    def arch_ops(self, arch: Any) -> list[OpSpec]:
        names = self.parse_arch(arch)
        chosen = [layer.op(n) for layer, n in zip(self._layers, names, strict=True)]
        return self._fixed[: self.n_stem] + chosen + self._fixed[self.n_stem :]

    def build_child(self, arch: Any) -> nn.Module:
        from searchers.spaces._nets import ChainNet  # torch only here: the service lists ops

        return ChainNet(self.arch_ops(arch)).eval()

    def random_arch(self, seed: int) -> tuple[str, ...]:
        rng = random.Random(seed)
        return tuple(rng.choice(layer.legal).name for layer in self._layers)
