"""One file per NAS algorithm, each registered by name (`searchers.registry`)."""

from searchers.algorithms import (
    darts,
    densenas,
    fairnas,
    fbnet,
    gdas,
    pcdarts,
    pdarts,
    proxyless,
    proxyless_rl,
    singlepath,
    spos,
)

__all__ = [
    "darts",
    "densenas",
    "fairnas",
    "fbnet",
    "gdas",
    "pcdarts",
    "pdarts",
    "proxyless",
    "proxyless_rl",
    "singlepath",
    "spos",
]
