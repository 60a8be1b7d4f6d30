"""One file per NAS algorithm, each registered by name (`searchers.registry`)."""

from searchers.algorithms import fbnet, proxyless

__all__ = ["fbnet", "proxyless"]
