"""hwlat: hardware-latency lookup tables and latency-aware NAS searchers."""

__version__ = "0.1.0"
