"""Search spaces: `create_space(name, resolution=..., width=..., classes=...)`."""

# Importing the modules registers the spaces.
from searchers.spaces import (  # noqa: F401
    darts,
    densenas,
    fbnet,
    hwnasbench,
    proxyless,
    singlepath,
    spos,
)
from searchers.spaces._registry import create_space, list_spaces, register_space, space_class
from searchers.spaces.base import ArchError, Choice, Layer, SearchSpace

__all__ = [
    "ArchError",
    "Choice",
    "Layer",
    "SearchSpace",
    "create_space",
    "list_spaces",
    "register_space",
    "space_class",
]
