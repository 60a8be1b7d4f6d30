"""How a client command reaches the service: the HTTP client, with the local admin
token that `hwlat serve` keeps in the data dir when the server is on this machine."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from latency_service.client import HwlatClient
from latency_service.config import data_dir


def admin_token_file() -> Path:
    return data_dir() / "admin-token"


def local_admin_token(create: bool) -> str | None:
    """The admin token `hwlat serve` keeps in the data dir (made on first start)."""
    path = admin_token_file()
    if path.exists():
        return path.read_text().strip() or None
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    token = "hwa_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def client(server: str, admin: str | None = None, token: str | None = None) -> HwlatClient:
    if admin is None and server.startswith(("http://127.0.0.1", "http://localhost")):
        admin = local_admin_token(create=False)
    return HwlatClient(server, token=token, admin_token=admin, retries=3)
