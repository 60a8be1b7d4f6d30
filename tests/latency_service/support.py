"""Helpers for the latency service tests: Alembic, a client wrapper, valid statistics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from latency_service.migrate import alembic_config, downgrade, upgrade

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FBNET32 = {"space": "fbnet", "resolution": 32}  # 104 distinct ops
FBNET32_OPS = 104


# tests migrate exactly as `hwlat serve` does, through the service's own entry points
__all__ = ["alembic_config", "downgrade", "upgrade"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stats(median: float = 1.0, **overrides: Any) -> dict[str, Any]:
    """Valid profiler statistics around `median` (ms per call)."""
    out: dict[str, Any] = {
        "median_ms": median,
        "mean_ms": median * 1.05,
        "std_ms": median * 0.1,
        "min_ms": median * 0.9,
        "p10_ms": median * 0.95,
        "p90_ms": median * 1.2,
        "iqr_ms": median * 0.1,
        "samples": 30,
        "calls_per_sample": 5,
        "ci_half_width_ms": median * 0.01,
        "target_met": True,
        "stable": True,
        "first_call_ms": median * 3,
    }
    out.update(overrides)
    return out


class Api:
    """A TestClient on one app, with shortcuts for the calls every test makes."""

    def __init__(self, app: FastAPI):
        self.app = app
        self.client = TestClient(app)

    # --- raw SQL on the app's own engine -------------------------------------------------
    def count(self, table: str, where: str = "1 = 1", **params: Any) -> int:
        with self.app.state.engine.connect() as conn:
            return int(
                conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE {where}"), params
                ).scalar_one()
            )

    def states(self, device: str) -> dict[str, int]:
        """Work item counts per state, as GET /v1/devices/{name} reports them."""
        return dict(self.device(device)["work"])

    # --- admin ---------------------------------------------------------------------------
    def make_device(self, name: str = "dev1", runtime: str = "ort-cpu") -> str:
        r = self.client.post("/v1/devices", json={"name": name, "runtime": runtime}, headers=ADMIN)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def device(self, name: str) -> dict[str, Any]:
        r = self.client.get(f"/v1/devices/{name}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def enqueue(self, name: str, **body: Any) -> dict[str, int]:
        r = self.client.post(f"/v1/devices/{name}/jobs", json=body, headers=ADMIN)
        assert r.status_code == 200, r.text
        return dict(r.json())

    # --- agent ---------------------------------------------------------------------------
    def lease(self, token: str, max_items: int = 16) -> dict[str, Any]:
        r = self.client.post(
            "/v1/agent/lease", json={"max_items": max_items}, headers=bearer(token)
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def upload(
        self,
        token: str,
        lease: dict[str, Any],
        *,
        run_id: str = "run-1",
        fail: int = 0,
        median: float = 1.0,
        error_type: str = "runtime_error",
    ) -> dict[str, int]:
        """Upload results for the lease's items, errors for the last `fail` of them."""
        items = lease["items"]
        ok, bad = items[: len(items) - fail], items[len(items) - fail :]
        body = {
            "run_id": run_id,
            "results": [
                {"item_id": i["item_id"], "key": i["key"], "stats": stats(median)} for i in ok
            ],
            "errors": [
                {"item_id": i["item_id"], "type": error_type, "message": "boom"} for i in bad
            ],
        }
        r = self.client.post(
            f"/v1/agent/leases/{lease['lease_id']}/results", json=body, headers=bearer(token)
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def measure(
        self, token: str, n: int = 16, run_id: str = "run-1", median: float = 1.0
    ) -> list[str]:
        """Lease up to n items and upload a result for each; returns their keys."""
        lease = self.lease(token, n)
        assert lease["items"], "nothing to lease"
        counts = self.upload(token, lease, run_id=run_id, median=median)
        assert counts["accepted"] == len(lease["items"]), counts
        return [i["key"] for i in lease["items"]]


MakeApi = Callable[..., Api]  # the make_api fixture: make_api(**settings) -> Api
