"""Read-only HTML pages over the service's data (see views.py)."""
