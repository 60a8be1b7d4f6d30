"""hwlat: hardware-latency lookup tables and latency-aware NAS searchers."""

from importlib.metadata import version

__version__ = version("hwlat")  # pyproject.toml's, as installed
