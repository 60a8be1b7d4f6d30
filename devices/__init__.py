"""devices: see docs/ARCHITECTURE.md."""
