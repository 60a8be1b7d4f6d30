"""Searchers by name: `@register_searcher` on the class, `create_searcher(name, ...)` to use."""

from __future__ import annotations

from typing import Any

from profiler.registry import Registry
from searchers.base import Searcher

SEARCHERS = Registry[Searcher]("searcher", "searcher")
register_searcher = SEARCHERS.register
list_searchers = SEARCHERS.names


def create_searcher(name: str, **kwargs: Any) -> Searcher:
    """`create_searcher("proxyless", table=..., data=..., config=..., latency=...)`."""
    import searchers.fbnet
    import searchers.proxyless  # noqa: F401

    return SEARCHERS.create(name, **kwargs)
