"""Searchers by name: `@register_searcher` on the class, `create_searcher(name, ...)` to use.

The algorithms live in `searchers/algorithms/`, one file each; importing that package
registers them all.
"""

from __future__ import annotations

from typing import Any

from profiler.registry import Registry
from searchers.core.loop import Searcher

SEARCHERS = Registry[Searcher]("searcher", "searcher")
register_searcher = SEARCHERS.register


def _load() -> None:
    import searchers.algorithms  # noqa: F401  (registers every algorithm)


def list_searchers() -> list[str]:
    _load()
    return SEARCHERS.names()


def searcher_class(name: str) -> type[Searcher]:
    _load()
    return SEARCHERS.get(name)


def create_searcher(name: str, **kwargs: Any) -> Searcher:
    """`create_searcher("proxyless", table=..., data=..., config=..., latency=...)`;
    `config` defaults to the algorithm's own defaults."""
    cls = searcher_class(name)
    kwargs.setdefault("config", cls.Config())
    return cls(**kwargs)
