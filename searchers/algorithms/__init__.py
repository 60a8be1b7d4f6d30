"""One file per NAS algorithm, each registered by name (`searchers.registry`)."""

from searchers.algorithms import darts, fairnas, fbnet, gdas, pcdarts, pdarts, proxyless, spos

__all__ = ["darts", "fairnas", "fbnet", "gdas", "pcdarts", "pdarts", "proxyless", "spos"]
