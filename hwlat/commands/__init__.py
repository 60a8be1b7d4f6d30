"""The `hwlat` commands, one module per command group. Shared options and the one way a
command fails are in `common.py` (which imports nothing of hwlat's packages); how a
client command reaches the service is in `connect.py`."""
