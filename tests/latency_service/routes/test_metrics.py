"""GET /metrics: request counters by route template, the queue gauge read from the
database at scrape time, and the domain counters (expired leases, uploads, trainings)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from latency_service.config import ServiceSettings
from latency_service.deps import get_session
from latency_service.main import create_app
from latency_service.metrics import UNMATCHED
from profiler.features import features
from profiler.ops import OpSpec
from profiler.sampling import sample_ops
from tests.latency_service.support import ADMIN, ADMIN_TOKEN, FBNET32, Api, MakeApi, bearer, stats

REQUESTS = "hwlat_http_requests_total"
DURATION_COUNT = "hwlat_http_request_duration_seconds_count"
WORK_ITEMS = "hwlat_work_items"
EXPIRED = "hwlat_leases_expired_total"
UPLOADS = "hwlat_uploads_total"
TRAININGS = "hwlat_predictor_trainings_total"
DEVICE_ROUTE = "/v1/devices/{name}"


def scrape(api: Api, **headers: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of one scrape as (sample name, labels, value)."""
    r = api.client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    ]


def value(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sample with exactly these labels (0 when the series does not exist yet)."""
    found = [v for n, lab, v in samples if n == name and lab == labels]
    assert len(found) <= 1
    return found[0] if found else 0.0


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum over the series whose labels include these (any value for the others)."""
    return sum(v for n, lab, v in samples if n == name and labels.items() <= lab.items())


def routes(samples: list[tuple[str, dict[str, str], float]]) -> set[str]:
    return {lab["route"] for n, lab, _ in samples if n == REQUESTS}


def test_requests_counted_by_route_template(api: Api, token: str) -> None:
    api.make_device("dev2")
    labels = {"method": "GET", "route": DEVICE_ROUTE}
    before = scrape(api)
    for name in ("dev1", "dev2", "dev1"):
        api.device(name)
    assert api.client.get("/v1/devices/ghost").status_code == 404
    after = scrape(api)
    ok, missing = {**labels, "status": "200"}, {**labels, "status": "404"}
    assert value(after, REQUESTS, **ok) - value(before, REQUESTS, **ok) == 3
    assert value(after, REQUESTS, **missing) - value(before, REQUESTS, **missing) == 1
    assert value(after, DURATION_COUNT, **labels) - value(before, DURATION_COUNT, **labels) == 4
    # the scrape itself is counted like any request (the first scrape, seen by the second)
    assert value(after, REQUESTS, method="GET", route="/metrics", status="200") >= 1
    assert not any("dev1" in r or "ghost" in r for r in routes(after))


def test_unknown_paths_share_one_label(api: Api) -> None:
    before = scrape(api)
    for path in ("/nope", "/nope/a", "/v1/devices/x/y/z", "/wp-login.php?x=1"):
        assert api.client.get(path).status_code == 404
    after = scrape(api)
    unmatched = {"method": "GET", "route": UNMATCHED, "status": "404"}
    assert value(after, REQUESTS, **unmatched) - value(before, REQUESTS, **unmatched) == 4
    assert routes(after) - routes(before) <= {UNMATCHED, "/metrics"}
    # a method outside the standard set does not make a label of its own either
    api.client.request("BREW", "/healthz")
    samples = scrape(api)
    assert total(samples, REQUESTS, method="OTHER", route="/healthz") == 1
    assert {lab["method"] for n, lab, _ in samples if n == REQUESTS} == {"GET", "OTHER"}


def test_request_refused_by_body_limit_is_counted(make_api: MakeApi) -> None:
    api = make_api(max_body_bytes=1024)
    r = api.client.post("/v1/devices", content=b"x" * 4096, headers=ADMIN)
    assert r.status_code == 413
    # refused before routing, so no route template is known
    assert value(scrape(api), REQUESTS, method="POST", route=UNMATCHED, status="413") == 1


def test_queue_depth_per_device_and_state(api: Api, token: str) -> None:
    api.make_device("dev2")
    api.enqueue("dev1", **FBNET32)
    api.measure(token, 4)
    api.lease(token, 6)
    samples = scrape(api)
    dev1 = {
        s: value(samples, WORK_ITEMS, device="dev1", state=s)
        for s in ("pending", "leased", "done", "failed")
    }
    assert dev1 == {"pending": 94, "leased": 6, "done": 4, "failed": 0}
    # a device without work is listed with zeros, not left out
    assert {
        value(samples, WORK_ITEMS, device="dev2", state=s)
        for s in ("pending", "leased", "done", "failed")
    } == {0}


def test_expired_leases_counted(make_api: MakeApi) -> None:
    api = make_api(lease_s=0.05, max_attempts=2)
    token = api.make_device("dev1")
    api.enqueue("dev1", **FBNET32)
    first = api.lease(token, 3)
    assert value(scrape(api), EXPIRED, device="dev1") == 0
    time.sleep(0.2)
    second = api.lease(token, 3)  # expires the first lease: its items go back to pending
    assert [i["item_id"] for i in second["items"]] == [i["item_id"] for i in first["items"]]
    assert value(scrape(api), EXPIRED, device="dev1") == 3
    time.sleep(0.2)
    api.lease(token, 3)  # expires them again: their second attempt, so they fail
    samples = scrape(api)
    assert value(samples, EXPIRED, device="dev1") == 6
    assert value(samples, WORK_ITEMS, device="dev1", state="failed") == 3
    # a late upload for a lease that ran out (its items leased again) is rejected
    late = api.upload(token, second)
    assert late["rejected"] == 3
    assert value(scrape(api), UPLOADS, device="dev1", outcome="rejected") == 3


def _upload(api: Api, token: str, lease: dict[str, Any], results: list[dict[str, Any]]) -> int:
    r = api.client.post(
        f"/v1/agent/leases/{lease['lease_id']}/results",
        json={"run_id": "run-1", "results": results},
        headers=bearer(token),
    )
    return r.status_code


def test_uploads_accepted_duplicate_and_refused(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    lease = api.lease(token, 4)
    assert api.upload(token, lease, fail=1)["accepted"] == 3  # 3 results and 1 error
    api.upload(token, lease, fail=1)  # a retry: results and error already recorded
    samples = scrape(api)
    outcomes = {
        o: value(samples, UPLOADS, device="dev1", outcome=o)
        for o in ("accepted", "rejected", "duplicate")
    }
    assert outcomes == {"accepted": 3, "rejected": 0, "duplicate": 3}
    # a whole upload refused (a result under another item's key: 403) rejects its results
    second = api.lease(token, 2)
    a, b = second["items"]
    swapped = [
        {"item_id": a["item_id"], "key": b["key"], "stats": stats()},
        {"item_id": b["item_id"], "key": b["key"], "stats": stats()},
    ]
    assert _upload(api, token, second, swapped) == 403
    samples = scrape(api)
    assert value(samples, UPLOADS, device="dev1", outcome="rejected") == 2
    assert value(samples, UPLOADS, device="dev1", outcome="accepted") == 3


def _measure(api: Api, token: str, keys: list[str]) -> None:
    """Measure `keys` with latencies that grow with FLOPs (training needs varied data)."""
    api.enqueue("dev1", ops=keys)
    while (lease := api.lease(token, 256))["items"]:
        results = [
            {
                "item_id": i["item_id"],
                "key": i["key"],
                "stats": stats(0.05 + 1e-9 * features(OpSpec.from_key(i["key"])).flops),
            }
            for i in lease["items"]
        ]
        assert _upload(api, token, lease, results) == 200


def test_predictor_trainings_counted(api: Api, token: str) -> None:
    keys = [op.key for op in sample_ops("mbconv", 30, seed=1) + sample_ops("conv", 3, seed=1)]
    _measure(api, token, keys)
    r = api.client.post("/v1/devices/dev1/predictors:train", json={}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert len(r.json()["trained"]) == 1 and list(r.json()["skipped"]) == ["conv"]
    # asking for a kind with too few measurements is refused (422): no training counted
    r = api.client.post(
        "/v1/devices/dev1/predictors:train", json={"kinds": ["conv"]}, headers=ADMIN
    )
    assert r.status_code == 422
    samples = scrape(api)
    assert value(samples, TRAININGS, device="dev1", outcome="trained") == 1
    assert value(samples, TRAININGS, device="dev1", outcome="skipped") == 1


def test_metrics_read_access_and_schema(make_api: MakeApi) -> None:
    api = make_api(read_access="token", read_token="reader-secret")
    assert api.client.get("/metrics").status_code == 401
    scrape(api, Authorization="Bearer reader-secret")
    assert "/metrics" not in api.client.get("/openapi.json").json()["paths"]


def test_each_app_counts_its_own_requests(db_url: str) -> None:
    apps = [
        Api(create_app(ServiceSettings(database_url=db_url, admin_token=ADMIN_TOKEN)))
        for _ in range(2)
    ]
    try:
        for _ in range(3):
            apps[0].client.get("/healthz")
        labels = {"method": "GET", "route": "/healthz", "status": "200"}
        assert [value(scrape(a), REQUESTS, **labels) for a in apps] == [3, 0]
    finally:
        for a in apps:
            a.client.close()
            a.app.state.engine.dispose()


def test_unhandled_error_counted_as_500(api: Api) -> None:
    def broken() -> Iterator[Session]:
        raise RuntimeError("database gone")
        yield  # a generator, like the real dependency

    api.app.dependency_overrides[get_session] = broken
    client = TestClient(api.app, raise_server_exceptions=False)
    assert client.get("/healthz").status_code == 500
    client.close()
    api.app.dependency_overrides.clear()
    labels = {"method": "GET", "route": "/healthz", "status": "500"}
    assert value(scrape(api), REQUESTS, **labels) == 1
