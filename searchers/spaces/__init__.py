"""Search spaces: `create_space(name, resolution=..., width=..., classes=...)`."""

# Importing the modules registers the spaces.
from searchers.spaces import darts, fbnet, hwnasbench, proxyless, singlepath, spos  # noqa: F401
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
