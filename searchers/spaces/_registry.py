"""Search spaces by name: `@register_space` on the class, `create_space(name, ...)` to use."""

from __future__ import annotations

from typing import Any, TypeVar

from searchers.spaces.base import SearchSpace

_SPACES: dict[str, type[SearchSpace]] = {}
S = TypeVar("S", bound=type[SearchSpace])


def register_space(cls: S) -> S:
    if cls.name in _SPACES:
        raise RuntimeError(f"search space {cls.name!r} registered twice")
    _SPACES[cls.name] = cls
    return cls


def list_spaces() -> list[str]:
    return sorted(_SPACES)


def space_class(name: str) -> type[SearchSpace]:
    try:
        return _SPACES[name]
    except KeyError:
        raise ValueError(
            f"space: unknown search space {name!r} (known: {', '.join(list_spaces())})"
        ) from None


def create_space(name: str, **kwargs: Any) -> SearchSpace:
    """`create_space("fbnet", resolution=224, width=1.0, classes=1000)`."""
    return space_class(name)(**kwargs)
