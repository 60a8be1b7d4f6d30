"""latency_service: see docs/ARCHITECTURE.md."""

from importlib.metadata import version

__version__ = version("hwlat")  # the installed distribution's, as `hwlat --version` prints
