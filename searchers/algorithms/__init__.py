"""One file per NAS algorithm, each registered by name (`searchers.registry`)."""

from searchers.algorithms import darts, fbnet, gdas, pcdarts, pdarts, proxyless

__all__ = ["darts", "fbnet", "gdas", "pcdarts", "pdarts", "proxyless"]
