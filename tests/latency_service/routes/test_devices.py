"""Devices: creation with a one-time token, listing, detail, agent tokens."""

from __future__ import annotations

from tests.latency_service.support import ADMIN, FBNET32, FBNET32_OPS, Api, bearer


def test_create_returns_token_once(api: Api) -> None:
    r = api.client.post(
        "/v1/devices", json={"name": "pixel7", "runtime": "ort-mobile"}, headers=ADMIN
    )
    assert r.status_code == 201
    body = r.json()
    assert body["token"].startswith("hwl_") and len(body["token"]) > 30
    dev = body["device"]
    assert (dev["name"], dev["runtime"], dev["revision"]) == ("pixel7", "ort-mobile", 1)
    assert dev["measurements"] == 0 and dev["work"] == {} and dev["coverage"] == []
    # the token is never shown again
    assert body["token"] not in api.client.get("/v1/devices/pixel7").text
    assert body["token"] not in api.client.get("/v1/devices").text
    # and it works as the device's agent token
    assert api.lease(body["token"])["lease_id"] is None


def test_duplicate_name_is_409(api: Api) -> None:
    api.make_device("dup")
    r = api.client.post("/v1/devices", json={"name": "dup", "runtime": "ort-cpu"}, headers=ADMIN)
    assert r.status_code == 409
    assert "already exists" in r.json()["detail"]
    assert api.count("devices") == 1


def test_invalid_device_name_is_422(api: Api) -> None:
    for name in ("Upper", "-lead", "x" * 65, "sp ace"):
        r = api.client.post("/v1/devices", json={"name": name, "runtime": "ort-cpu"}, headers=ADMIN)
        assert r.status_code == 422, name
    assert api.count("devices") == 0


def test_list_and_get(api: Api) -> None:
    token_b = api.make_device("bbb")
    api.make_device("aaa")
    listed = api.client.get("/v1/devices").json()
    assert [d["name"] for d in listed] == ["aaa", "bbb"]

    api.enqueue("bbb", **FBNET32)
    api.measure(token_b, 5)
    dev = api.device("bbb")
    assert dev["measurements"] == 5
    assert dev["work"] == {"done": 5, "pending": FBNET32_OPS - 5}
    assert dev["last_seen_at"] is not None
    [cov] = dev["coverage"]
    assert cov["space"] == "fbnet" and cov["resolution"] == 32 and cov["classes"] == 1000
    assert (cov["measured"], cov["total"]) == (5, FBNET32_OPS)
    assert abs(cov["fraction"] - 5 / FBNET32_OPS) < 1e-9
    # the other device is untouched
    other = api.device("aaa")
    assert other["measurements"] == 0 and other["work"] == {} and other["coverage"] == []


def test_get_unknown_device_is_404(api: Api) -> None:
    r = api.client.get("/v1/devices/nope")
    assert r.status_code == 404
    assert "hwlat devices" in r.json()["detail"]


def test_add_and_revoke_token(api: Api) -> None:
    first = api.make_device("dev1")
    r = api.client.post("/v1/devices/dev1/tokens", headers=ADMIN)
    assert r.status_code == 201
    second = r.json()["token"]
    assert second != first and r.json()["prefix"] == second[:12]
    # both tokens act for the device
    for tok in (first, second):
        assert api.lease(tok)["lease_id"] is None

    r = api.client.delete(f"/v1/devices/dev1/tokens/{second[:12]}", headers=ADMIN)
    assert r.status_code == 204
    r = api.client.post("/v1/agent/lease", json={}, headers=bearer(second))
    assert r.status_code == 401
    assert api.lease(first)["lease_id"] is None  # the other one still works
    # revoking again: nothing active with that prefix
    r = api.client.delete(f"/v1/devices/dev1/tokens/{second[:12]}", headers=ADMIN)
    assert r.status_code == 404


def test_token_of_unknown_device_is_404(api: Api) -> None:
    assert api.client.post("/v1/devices/ghost/tokens", headers=ADMIN).status_code == 404
    assert (
        api.client.delete("/v1/devices/ghost/tokens/hwl_abcdefgh", headers=ADMIN).status_code == 404
    )
