"""Who may call what, what the service refuses to store, and how tokens are kept."""

from __future__ import annotations

import json

import pytest
from httpx import Response
from sqlalchemy import text

from tests.latency_service.support import ADMIN, ADMIN_TOKEN, FBNET32, Api, MakeApi, bearer, stats

KEY = "conv|cin=8,cout=8,g=1,k=3,s=1|1x8x8x8|float32"
ADMIN_CALLS = [
    ("POST", "/v1/devices", {"name": "x", "runtime": "ort-cpu"}),
    ("POST", "/v1/devices/dev1/jobs", {"ops": [KEY]}),
    ("POST", "/v1/devices/dev1/tokens", None),
    ("DELETE", "/v1/devices/dev1/tokens/hwl_abcdefgh", None),
]
AGENT_CALLS = [
    ("POST", "/v1/agent/lease", {"max_items": 1}),
    ("POST", "/v1/agent/leases/abc/heartbeat", None),
    ("POST", "/v1/agent/leases/abc/results", {"run_id": "r"}),
    ("POST", "/v1/agent/leases/abc/release", {}),
]


def call(api: Api, method: str, url: str, body: object, headers: dict[str, str] | None) -> Response:
    return api.client.request(method, url, json=body, headers=headers or {})


def test_no_token_is_401(api: Api, token: str) -> None:
    for method, url, body in ADMIN_CALLS + AGENT_CALLS:
        r = call(api, method, url, body, None)
        assert r.status_code == 401, (method, url, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    assert api.count("devices") == 1 and api.count("work_items") == 0


def test_agent_token_on_admin_endpoints_is_403(api: Api, token: str) -> None:
    for method, url, body in ADMIN_CALLS:
        r = call(api, method, url, body, bearer(token))
        assert r.status_code == 403, (method, url, r.text)
        assert "admin token" in r.json()["detail"]
    assert api.count("devices") == 1 and api.count("agent_tokens") == 1


def test_admin_or_unknown_token_on_agent_endpoints_is_401(api: Api, token: str) -> None:
    for headers in (ADMIN, bearer("hwl_not-a-token")):
        for method, url, body in AGENT_CALLS:
            r = call(api, method, url, body, headers)
            assert r.status_code == 401, (method, url, r.text)


def test_device_cannot_touch_another_devices_lease(api: Api, token: str) -> None:
    other = api.make_device("dev2")
    api.enqueue("dev2", **FBNET32)
    lease = api.lease(other, 2)
    base = f"/v1/agent/leases/{lease['lease_id']}"
    r = api.client.post(f"{base}/heartbeat", headers=bearer(token))
    assert r.status_code == 403
    r = api.client.post(f"{base}/release", json={}, headers=bearer(token))
    assert r.status_code == 403
    upload = {
        "run_id": "evil",
        "results": [
            {"item_id": i["item_id"], "key": i["key"], "stats": stats()} for i in lease["items"]
        ],
    }
    r = api.client.post(f"{base}/results", json=upload, headers=bearer(token))
    assert r.status_code == 403
    errors = {
        "run_id": "evil",
        "errors": [{"item_id": lease["items"][0]["item_id"], "type": "timeout", "message": "x"}],
    }
    r = api.client.post(f"{base}/results", json=errors, headers=bearer(token))
    assert r.status_code == 403
    assert api.count("measurements") == 0
    assert api.states("dev2")["leased"] == 2
    assert api.count("work_items", "last_error IS NOT NULL") == 0


def test_body_over_the_limit_is_413(make_api: MakeApi) -> None:
    api = make_api(max_body_bytes=2048)
    api.make_device("dev1")
    big = {"ops": [KEY] * 200}
    r = api.client.post("/v1/devices/dev1/jobs", json=big, headers=ADMIN)
    assert r.status_code == 413 and "2048" in r.json()["detail"]
    assert api.count("ops") == 0
    # also when the body streams in without a content-length
    chunks = (json.dumps(big)[i : i + 500].encode() for i in range(0, len(json.dumps(big)), 500))
    r = api.client.post(
        "/v1/devices/dev1/jobs",
        content=chunks,
        headers={**ADMIN, "content-type": "application/json"},
    )
    assert r.status_code == 413
    small = api.client.post("/v1/devices/dev1/jobs", json={"ops": [KEY]}, headers=ADMIN)
    assert small.status_code == 200


@pytest.mark.parametrize(
    "field,value",
    [
        ("median_ms", "NaN"),
        ("p90_ms", "Infinity"),
        ("mean_ms", "-Infinity"),
        ("std_ms", "-0.5"),
        ("median_ms", "0"),
        ("samples", "0"),
        ("p10_ms", "5.0"),
    ],
)
def test_bad_latencies_are_422_and_nothing_is_written(
    api: Api, token: str, field: str, value: str
) -> None:
    api.enqueue("dev1", **FBNET32)
    lease = api.lease(token, 2)
    good, bad = lease["items"]
    marker = -12345.678
    results = [{"item_id": i["item_id"], "key": i["key"], "stats": stats()} for i in (good, bad)]
    results[1]["stats"][field] = marker
    raw = json.dumps({"run_id": "r", "results": results}).replace(str(marker), value)
    assert value in raw
    r = api.client.post(
        f"/v1/agent/leases/{lease['lease_id']}/results",
        content=raw,
        headers={**bearer(token), "content-type": "application/json"},
    )
    assert r.status_code == 422, r.text
    assert api.count("measurements") == 0  # not even the good one
    assert api.states("dev1")["leased"] == 2
    assert api.count("work_items", "state = 'done'") == 0


def test_malformed_keys_and_kinds_are_422(api: Api, token: str) -> None:
    cases = [
        ("nosuchkind|c=1|1x1x1x1|float32", "kind: unknown op kind 'nosuchkind'"),
        ("conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32|float32", "shape: "),
        ("conv|s=2,cin=3,cout=16,g=1,k=3|1x3x32x32|float32", "key: not canonical"),
        ("conv|cin=3,cout=16,g=1,k=4,s=2|1x3x32x32|float32", "k: kernel size must be odd"),
        ("conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float64", "dtype: must be one of"),
        ("garbage", "key: expected 'kind|params|NxCxHxW|dtype'"),
    ]
    for key, message in cases:
        r = api.client.post("/v1/devices/dev1/jobs", json={"ops": [key]}, headers=ADMIN)
        assert r.status_code == 422, key
        assert r.json()["detail"].startswith(f"ops[0]: {message}"), r.text
        r = api.client.get("/v1/devices/dev1/latency", params={"op": key})
        assert r.status_code == 422 and message in r.json()["detail"], r.text
        r = api.client.post("/v1/devices/dev1/latency:batch", json={"keys": [KEY, key]})
        assert r.status_code == 422 and f"keys[1]: {message}" in r.json()["detail"], r.text
    assert api.count("ops") == 0


def test_oversized_batch_is_422(api: Api, token: str) -> None:
    r = api.client.post("/v1/devices/dev1/latency:batch", json={"keys": [KEY] * 10_001})
    assert r.status_code == 422 and "at most 10000" in r.json()["detail"]
    r = api.client.post("/v1/devices/dev1/latency:batch", json={"keys": []})
    assert r.status_code == 422


def test_token_read_access(make_api: MakeApi) -> None:
    api = make_api(read_access="token", read_token="reader-secret")
    agent = api.make_device("dev1")
    reads = [
        "/v1/devices",
        "/v1/devices/dev1",
        f"/v1/devices/dev1/latency?op={KEY}",
        "/v1/devices/dev1/lut?space=fbnet&resolution=32",
    ]
    for url in reads:
        r = api.client.get(url)
        assert r.status_code == 401, url
        assert api.client.get(url, headers=bearer("wrong")).status_code == 401, url
        for headers in (ADMIN, bearer(agent), bearer("reader-secret")):
            rr = api.client.get(url, headers=headers)
            assert rr.status_code in (200, 404), (url, rr.text)
        assert api.client.get("/v1/devices", headers=bearer("reader-secret")).status_code == 200
    r = api.client.post("/v1/devices/dev1/latency:batch", json={"keys": [KEY]})
    assert r.status_code == 401
    r = api.client.post(
        "/v1/devices/dev1/latency:batch", json={"keys": [KEY]}, headers=bearer(agent)
    )
    assert r.status_code == 200 and r.json()["missing"] == [KEY]
    # the read token is no admin token
    r = api.client.post(
        "/v1/devices", json={"name": "x", "runtime": "ort-cpu"}, headers=bearer("reader-secret")
    )
    assert r.status_code == 403


def test_open_read_access_needs_no_token(api: Api, token: str) -> None:
    assert api.client.get("/v1/devices").status_code == 200
    assert api.client.get("/v1/devices/dev1").status_code == 200


def test_tokens_are_stored_hashed(api: Api, token: str) -> None:
    second = api.client.post("/v1/devices/dev1/tokens", headers=ADMIN).json()["token"]
    with api.app.state.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM agent_tokens")).all()
        dump = " ".join(str(v) for row in rows for v in row)
    assert len(rows) == 2
    for tok in (token, second):
        assert tok not in dump and tok[12:] not in dump
    assert ADMIN_TOKEN not in dump


def test_ids_beyond_the_database_integer_are_422(api: Api, token: str) -> None:
    """Found by schemathesis: an item id over 2**63 (SQLite) or 2**31 (PostgreSQL) used
    to reach the database and answer 500."""
    api.enqueue("dev1", **FBNET32)
    lease = api.lease(token, 1)
    url = f"/v1/agent/leases/{lease['lease_id']}"
    for item_id in (2**31, 2**63):
        bodies = [
            {"run_id": "r", "errors": [{"item_id": item_id, "type": "error", "message": ""}]},
            {"run_id": "r", "results": [{"item_id": item_id, "key": KEY, "stats": stats()}]},
        ]
        for body in bodies:
            r = api.client.post(f"{url}/results", json=body, headers=bearer(token))
            assert r.status_code == 422, r.text
        r = api.client.post(f"{url}/release", json={"item_ids": [item_id]}, headers=bearer(token))
        assert r.status_code == 422, r.text
    assert api.states("dev1")["leased"] == 1
