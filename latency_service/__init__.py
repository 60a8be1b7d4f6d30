"""latency_service: see docs/ARCHITECTURE.md."""
