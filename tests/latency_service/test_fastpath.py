"""The lookup fast path (latency_service/fastpath.py) answers exactly what the route
answers, counts in the request metrics under the route's template, and leaves every
other case to the app."""

from __future__ import annotations

import pytest

from tests.latency_service.support import FBNET32, Api, MakeApi, bearer

TEMPLATE = 'route="/v1/devices/{name}/latency"'


def lookups_counted(api: Api) -> float:
    text = api.client.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("hwlat_http_requests_total") and TEMPLATE in line
    )


def test_same_bytes_as_the_route(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    keys = api.measure(token, 3, median=1.25)
    before = lookups_counted(api)
    for key in keys:
        fast = api.client.get("/v1/devices/dev1/latency", params={"op": key})
        # a second parameter sends the request through FastAPI's route
        slow = api.client.get(
            "/v1/devices/dev1/latency", params={"op": key, "measured_only": "false"}
        )
        assert fast.status_code == slow.status_code == 200
        assert fast.content == slow.content
        assert fast.headers["content-type"] == slow.headers["content-type"]
        assert fast.json()["median_ms"] == 1.25
    assert lookups_counted(api) == before + 2 * len(keys)


def test_everything_else_goes_to_the_app(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    [key] = api.measure(token, 1)
    get = api.client.get
    assert get("/v1/devices/nope/latency", params={"op": key}).status_code == 404
    unmeasured = "conv|cin=8,cout=8,g=1,k=3,s=1|1x8x8x8|float32"
    r = get("/v1/devices/dev1/latency", params={"op": unmeasured})
    assert r.status_code == 404 and "hwlat jobs add" in r.json()["detail"]
    assert get("/v1/devices/dev1/latency", params={"op": "conv|bad"}).status_code == 422
    assert get("/v1/devices/dev1/latency").status_code == 422  # no op at all
    assert api.client.post("/v1/devices/dev1/latency", params={"op": key}).status_code == 405


def test_token_protected_reads_are_checked(make_api: MakeApi) -> None:
    api = make_api(read_access="token", read_token="reader")
    token = api.make_device("dev1")
    api.enqueue("dev1", **FBNET32)
    [key] = api.measure(token, 1)
    url = "/v1/devices/dev1/latency"
    assert api.client.get(url, params={"op": key}).status_code == 401
    r = api.client.get(url, params={"op": key}, headers=bearer("reader"))
    assert r.status_code == 200 and r.json()["key"] == key


def test_a_plain_lookup_never_reaches_the_route(
    api: Api, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.enqueue("dev1", **FBNET32)
    [key] = api.measure(token, 1)

    async def broken(*_: object) -> None:
        raise RuntimeError("the route ran")

    monkeypatch.setattr("latency_service.routes.latency.snapshot", broken)
    assert api.client.get("/v1/devices/dev1/latency", params={"op": key}).status_code == 200
    with pytest.raises(RuntimeError, match="the route ran"):
        api.client.get("/v1/devices/dev1/latency", params={"op": key, "measured_only": "1"})
