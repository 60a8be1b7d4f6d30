"""Search spaces by name: `@register_space` on the class, `create_space(name, ...)` to use."""

from __future__ import annotations

from typing import Any

from profiler.registry import Registry
from searchers.spaces.base import SearchSpace

SPACES = Registry[SearchSpace]("space", "search space")
register_space = SPACES.register
list_spaces = SPACES.names
space_class = SPACES.get


def create_space(name: str, **kwargs: Any) -> SearchSpace:
    """`create_space("fbnet", resolution=224, width=1.0, classes=1000)`."""
    return SPACES.create(name, **kwargs)
