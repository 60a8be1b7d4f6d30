"""The one HTTP client of hwlat (agents, searchers, the CLI). httpx only: it imports
neither FastAPI nor SQLAlchemy, so an agent installs light.

Every call has explicit timeouts. Network errors and 408/429/500/502/503/504 are retried
a bounded number of times with capped exponential backoff and full jitter, honouring
Retry-After; every retry is logged. Other 4xx answers raise `ClientError` at once with
the server's message, which says what to do next.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from latency_service.schemas import (
    AgentDeviceOut,
    BatchOut,
    CancelResult,
    DeviceCreated,
    DeviceOut,
    DriftOut,
    EstimateOut,
    ImportDetail,
    ImportResult,
    JobResult,
    LatencyOut,
    Lease,
    LutOut,
    NetworkOut,
    PredictorOut,
    RefineResult,
    RemeasureResult,
    RepeatabilityReport,
    RetestResult,
    TokenOut,
    TrainOut,
    UploadOut,
    WorkItemOut,
)

log = logging.getLogger("hwlat.client")
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class HwlatError(Exception):
    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ClientError(HwlatError):
    """The server refused the request (4xx other than 408/429): fix the request."""


class ServiceUnavailable(HwlatError):
    """Still failing after every retry (network down, server overloaded or erroring)."""


def _detail(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:500] or r.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI validation errors
        return "; ".join(
            f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
            for d in detail
            if isinstance(d, dict)
        )
    return str(detail)


class HwlatClient:
    """`HwlatClient("http://127.0.0.1:8000", token=..., admin_token=...)`."""

    def __init__(
        self,
        server: str,
        token: str | None = None,
        admin_token: str | None = None,
        timeout: float = 30.0,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.server = server.rstrip("/")
        self.token, self.admin_token = token, admin_token
        self.retries, self.backoff_s, self.max_backoff_s = retries, backoff_s, max_backoff_s
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.server,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HwlatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------
    def _delay(self, attempt: int, r: httpx.Response | None) -> float:
        if r is not None and (after := r.headers.get("retry-after")):
            if after.replace(".", "", 1).isdigit():
                return min(float(after), self.max_backoff_s)
            when = email.utils.parsedate_to_datetime(after) if after else None
            if when is not None:
                return min(max(0.0, when.timestamp() - time.time()), self.max_backoff_s)
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))

    def request(
        self, method: str, path: str, auth: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        secret = {"admin": self.admin_token, "agent": self.token}.get(auth or "")
        if auth == "read":
            secret = self.token or self.admin_token
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        for attempt in range(self.retries + 1):
            try:
                r = self._http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ServiceUnavailable(
                        f"{self.server} unreachable after {attempt + 1} tries: {exc}"
                    ) from exc
                wait = self._delay(attempt, None)
                log.warning("%s %s: %s; retry %d in %.2fs", method, path, exc, attempt + 1, wait)
                self._sleep(wait)
                continue
            if r.status_code in RETRY_STATUS and attempt < self.retries:
                wait = self._delay(attempt, r)
                log.warning(
                    "%s %s: HTTP %d; retry %d in %.2fs",
                    method,
                    path,
                    r.status_code,
                    attempt + 1,
                    wait,
                )
                self._sleep(wait)
                continue
            if r.status_code >= 400:
                cls = ServiceUnavailable if r.status_code in RETRY_STATUS else ClientError
                raise cls(f"HTTP {r.status_code}: {_detail(r)}", r.status_code)
            return r
        raise AssertionError("unreachable: the loop returns or raises")

    def _json(self, method: str, path: str, auth: str | None = None, **kw: Any) -> Any:
        return self.request(method, path, auth, **kw).json()

    # --- admin -------------------------------------------------------------------------
    def create_device(self, name: str, runtime: str) -> DeviceCreated:
        return DeviceCreated.model_validate(
            self._json("POST", "/v1/devices", "admin", json={"name": name, "runtime": runtime})
        )

    def add_token(self, device: str) -> TokenOut:
        return TokenOut.model_validate(self._json("POST", f"/v1/devices/{device}/tokens", "admin"))

    def revoke_token(self, device: str, prefix: str) -> None:
        self.request("DELETE", f"/v1/devices/{device}/tokens/{prefix}", "admin")

    def enqueue_space(
        self,
        device: str,
        space: str,
        resolution: int | None = None,
        width: float = 1.0,
        classes: int | None = None,
        options: dict[str, int] | None = None,
    ) -> JobResult:
        body = {
            "space": space,
            "resolution": resolution,
            "width": width,
            "classes": classes,
            "options": options or {},
        }
        return JobResult.model_validate(
            self._json("POST", f"/v1/devices/{device}/jobs", "admin", json=body)
        )

    def enqueue_ops(self, device: str, keys: list[str]) -> JobResult:
        return JobResult.model_validate(
            self._json("POST", f"/v1/devices/{device}/jobs", "admin", json={"ops": keys})
        )

    def refine(
        self, device: str, kind: str, n: int, seed: int = 0, worst_fraction: float = 0.1
    ) -> RefineResult:
        """Queue `n` ops near those the current `kind` predictor gets most wrong."""
        body = {"kind": kind, "n": n, "seed": seed, "worst_fraction": worst_fraction}
        return RefineResult.model_validate(
            self._json("POST", f"/v1/devices/{device}/jobs:refine", "admin", json=body)
        )

    def remeasure(self, device: str, kind: str | None = None) -> RemeasureResult:
        """Queue again the ops `device` measured while disturbed (the service's rules)."""
        return RemeasureResult.model_validate(
            self._json("POST", f"/v1/devices/{device}/jobs:remeasure", "admin", json={"kind": kind})
        )

    def retest(self, device: str, kind: str, n: int, seed: int = 0) -> RetestResult:
        """Queue `n` random measured ops of `kind` once more (label repeatability)."""
        body = {"kind": kind, "n": n, "seed": seed}
        return RetestResult.model_validate(
            self._json("POST", f"/v1/devices/{device}/jobs:retest", "admin", json=body)
        )

    def cancel(
        self,
        device: str,
        kind: str | None = None,
        reason: str | None = None,
        newest: int | None = None,
    ) -> CancelResult:
        """Take pending work out of `device`'s queue (all, or what the filters match)."""
        body = {"kind": kind, "reason": reason, "newest": newest}
        return CancelResult.model_validate(
            self._json("POST", f"/v1/devices/{device}/jobs:cancel", "admin", json=body)
        )

    def repeatability(self, device: str, kinds: list[str] | None = None) -> RepeatabilityReport:
        params = {"kind": kinds} if kinds else {}
        return RepeatabilityReport.model_validate(
            self._json("GET", f"/v1/devices/{device}/repeatability", "read", params=params)
        )

    def train(
        self,
        device: str,
        kinds: list[str] | None = None,
        timeout: float = 1800.0,
        models: list[str] | None = None,
    ) -> TrainOut:
        """Train predictors (server-side; minutes for thousands of measurements)."""
        return TrainOut.model_validate(
            self._json(
                "POST",
                f"/v1/devices/{device}/predictors:train",
                "admin",
                json={"kinds": kinds, "models": models},
                timeout=timeout,
            )
        )

    # --- reads -------------------------------------------------------------------------
    def predictors(self, device: str, heldout: bool = False) -> list[PredictorOut]:
        return [
            PredictorOut.model_validate(p)
            for p in self._json(
                "GET", f"/v1/devices/{device}/predictors", "read", params={"heldout": heldout}
            )
        ]

    def drift(self, device: str, revision: int | None = None) -> DriftOut:
        params = {} if revision is None else {"revision": revision}
        return DriftOut.model_validate(
            self._json("GET", f"/v1/devices/{device}/drift", "read", params=params)
        )

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/healthz")
        return result

    def list_devices(self) -> list[DeviceOut]:
        return [DeviceOut.model_validate(d) for d in self._json("GET", "/v1/devices", "read")]

    def get_device(self, device: str) -> DeviceOut:
        return DeviceOut.model_validate(self._json("GET", f"/v1/devices/{device}", "read"))

    def latency(self, device: str, key: str) -> LatencyOut:
        return LatencyOut.model_validate(
            self._json("GET", f"/v1/devices/{device}/latency", "read", params={"op": key})
        )

    def latency_batch(self, device: str, keys: list[str]) -> BatchOut:
        return BatchOut.model_validate(
            self._json("POST", f"/v1/devices/{device}/latency:batch", "read", json={"keys": keys})
        )

    def lut(
        self,
        device: str,
        space: str,
        resolution: int | None = None,
        width: float = 1.0,
        classes: int | None = None,
        options: dict[str, int] | None = None,
    ) -> LutOut:
        return LutOut.model_validate(
            self._json(
                "GET",
                f"/v1/devices/{device}/lut",
                "read",
                params=self._lut_params(space, resolution, width, classes, options, "json"),
            )
        )

    def lut_text(
        self,
        device: str,
        space: str,
        fmt: str,
        resolution: int | None = None,
        width: float = 1.0,
        classes: int | None = None,
        options: dict[str, int] | None = None,
    ) -> str:
        """The LUT rendered by the server: `json`, `csv`, or any foreign format it knows
        (`proxyless-yaml`, `ofa-yaml`, `nni-lut`, ...; measured cells only)."""
        return self.request(
            "GET",
            f"/v1/devices/{device}/lut",
            "read",
            params=self._lut_params(space, resolution, width, classes, options, fmt),
        ).text

    @staticmethod
    def _lut_params(
        space: str,
        resolution: int | None,
        width: float,
        classes: int | None,
        options: dict[str, int] | None,
        fmt: str,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "space": space,
            "width": width,
            "format": fmt,
            "option": [f"{k}={v}" for k, v in (options or {}).items()],
        }
        params.update(
            {k: v for k, v in (("resolution", resolution), ("classes", classes)) if v is not None}
        )
        return params

    def import_lut(
        self,
        device: str,
        content: bytes | str,
        file_name: str,
        fmt: str | None,
        space: str,
        resolution: int | None = None,
        width: float = 1.0,
        classes: int | None = None,
        options: dict[str, int] | None = None,
    ) -> ImportResult:
        """Import a foreign latency table as device `device`'s numbers (admin); `fmt`
        None lets the server tell the format by content. Safe to retry: the same file
        again is a no-op."""
        if isinstance(content, bytes):
            try:
                content = content.decode("utf-8")
            except UnicodeDecodeError:
                raise ClientError(f"{file_name}: not a text file (not UTF-8)") from None
        body = {
            "file_name": file_name,
            "format": fmt,
            "content": content,
            "space": space,
            "resolution": resolution,
            "width": width,
            "classes": classes,
            "options": options or {},
        }
        return ImportResult.model_validate(
            self._json("POST", f"/v1/devices/{device}/imports", "admin", json=body)
        )

    def imports(self, device: str) -> list[ImportDetail]:
        """The files imported into a device, newest revision first."""
        return [
            ImportDetail.model_validate(row)
            for row in self._json("GET", f"/v1/devices/{device}/imports", "read")
        ]

    def enqueue_networks(self, device: str, networks: list[dict[str, Any]]) -> JobResult:
        return JobResult.model_validate(
            self._json("POST", f"/v1/devices/{device}/jobs", "admin", json={"networks": networks})
        )

    def list_work(
        self, device: str, state: str | None = None, limit: int = 100
    ) -> list[WorkItemOut]:
        params: dict[str, Any] = {"limit": limit, **({"state": state} if state else {})}
        return [
            WorkItemOut.model_validate(w)
            for w in self._json("GET", f"/v1/devices/{device}/work", "read", params=params)
        ]

    def estimate(self, device: str, body: dict[str, Any]) -> EstimateOut:
        return EstimateOut.model_validate(
            self._json("POST", f"/v1/devices/{device}/networks:estimate", "read", json=body)
        )

    def networks(
        self, device: str, space: str | None = None, resolution: int | None = None
    ) -> list[NetworkOut]:
        params = {k: v for k, v in (("space", space), ("resolution", resolution)) if v}
        return [
            NetworkOut.model_validate(n)
            for n in self._json("GET", f"/v1/devices/{device}/networks", "read", params=params)
        ]

    # --- agent -------------------------------------------------------------------------
    def me(self) -> AgentDeviceOut:
        return AgentDeviceOut.model_validate(self._json("GET", "/v1/agent/me", "agent"))

    def hello(
        self,
        fingerprint: dict[str, Any],
        fingerprint_id: str,
        runtime: str,
        new_revision: bool = False,
    ) -> AgentDeviceOut:
        body = {
            "fingerprint": fingerprint,
            "fingerprint_id": fingerprint_id,
            "runtime": runtime,
            "new_revision": new_revision,
        }
        return AgentDeviceOut.model_validate(
            self._json("POST", "/v1/agent/hello", "agent", json=body)
        )

    def lease(self, max_items: int = 16) -> Lease:
        return Lease.model_validate(
            self._json("POST", "/v1/agent/lease", "agent", json={"max_items": max_items})
        )

    def heartbeat(self, lease_id: str) -> Lease:
        return Lease.model_validate(
            self._json("POST", f"/v1/agent/leases/{lease_id}/heartbeat", "agent")
        )

    def upload(
        self,
        lease_id: str,
        run_id: str,
        results: list[dict[str, Any]],
        errors: list[dict[str, Any]] | None = None,
        reference: dict[str, Any] | None = None,
    ) -> UploadOut:
        body: dict[str, Any] = {"run_id": run_id, "results": results, "errors": errors or []}
        if reference is not None:  # a service older than the panel refuses the field
            body["reference"] = reference
        return UploadOut.model_validate(
            self._json("POST", f"/v1/agent/leases/{lease_id}/results", "agent", json=body)
        )

    def release(self, lease_id: str, item_ids: list[int] | None = None) -> UploadOut:
        return UploadOut.model_validate(
            self._json(
                "POST", f"/v1/agent/leases/{lease_id}/release", "agent", json={"item_ids": item_ids}
            )
        )
