"""One file per NAS algorithm, each registered by name (`searchers.registry`)."""

from searchers.algorithms import (
    darts,
    densenas,
    enas,
    enas_cell,
    fairnas,
    fbnet,
    gdas,
    oneshot,
    pcdarts,
    pdarts,
    proxyless,
    proxyless_rl,
    singlepath,
    smash,
    spos,
)

__all__ = [
    "darts",
    "densenas",
    "enas",
    "enas_cell",
    "fairnas",
    "fbnet",
    "gdas",
    "oneshot",
    "pcdarts",
    "pdarts",
    "proxyless",
    "proxyless_rl",
    "singlepath",
    "smash",
    "spos",
]
