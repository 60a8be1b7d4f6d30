"""Enqueueing work: whole spaces and explicit op keys, with honest counts; and cancelling
what is still pending."""

from __future__ import annotations

from profiler.sampling import sample_ops
from tests.latency_service.support import ADMIN, FBNET32, FBNET32_OPS, Api, bearer

CONV = "conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float32"
MBCONV = "mbconv|cin=16,cout=24,e=6,g=1,k=3,s=2,se=0|1x16x32x32|float32"


def test_enqueue_space_then_again(api: Api, token: str) -> None:
    first = api.enqueue("dev1", **FBNET32)
    assert first == {
        "total": FBNET32_OPS,
        "new": FBNET32_OPS,
        "already_measured": 0,
        "already_queued": 0,
    }
    assert api.count("work_items", "state = 'pending'") == FBNET32_OPS
    assert api.count("ops") == FBNET32_OPS

    second = api.enqueue("dev1", **FBNET32)
    assert second == {
        "total": FBNET32_OPS,
        "new": 0,
        "already_measured": 0,
        "already_queued": FBNET32_OPS,
    }
    assert api.count("work_items") == FBNET32_OPS  # nothing queued twice
    assert api.count("space_targets") == 1


def test_enqueue_after_uploads_counts_measured(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    measured = api.measure(token, 10)
    assert len(measured) == 10
    again = api.enqueue("dev1", **FBNET32)
    assert again == {
        "total": FBNET32_OPS,
        "new": 0,
        "already_measured": 10,
        "already_queued": FBNET32_OPS - 10,
    }
    assert api.states("dev1") == {"done": 10, "pending": FBNET32_OPS - 10}


def test_failed_items_are_queued_again(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=[CONV])
    for _ in range(3):  # max_attempts defaults to 3
        lease = api.lease(token)
        api.upload(token, lease, fail=1)
    assert api.states("dev1") == {"failed": 1}
    again = api.enqueue("dev1", ops=[CONV])
    assert again == {"total": 1, "new": 1, "already_measured": 0, "already_queued": 0}
    assert api.states("dev1") == {"failed": 1, "pending": 1}


def test_enqueue_explicit_ops(api: Api, token: str) -> None:
    out = api.enqueue("dev1", ops=[CONV, MBCONV, CONV])
    assert out == {"total": 2, "new": 2, "already_measured": 0, "already_queued": 0}
    lease = api.lease(token)
    assert sorted(i["key"] for i in lease["items"]) == sorted([CONV, MBCONV])
    op = next(i for i in lease["items"] if i["key"] == MBCONV)["op"]
    assert op["kind"] == "mbconv" and op["shape"] == [1, 16, 32, 32]
    # ops shared with a space are stored once
    api.enqueue("dev1", **FBNET32)
    assert api.count("ops", "key = :k", k=CONV) == 1


def test_enqueue_more_ops_than_one_query_takes(api: Api, token: str) -> None:
    keys = [op.key for op in sample_ops("mbconv", 1200, seed=9, kernels=True)]  # > CHUNK ids
    assert api.enqueue("dev1", ops=keys)["new"] == 1200
    again = api.enqueue("dev1", ops=keys)
    assert again == {"total": 1200, "new": 0, "already_measured": 0, "already_queued": 1200}


def test_space_and_ops_queues_are_per_device(api: Api, token: str) -> None:
    api.make_device("dev2")
    api.enqueue("dev1", ops=[CONV])
    assert api.enqueue("dev2", ops=[CONV])["new"] == 1
    assert api.count("work_items") == 2
    assert api.count("ops") == 1


def test_darts_options(api: Api, token: str) -> None:
    out = api.enqueue("dev1", space="darts", resolution=8, options={"C": 4, "cells": 3})
    assert out["new"] == out["total"] > 0
    [cov] = api.device("dev1")["coverage"]
    assert cov["space"] == "darts" and cov["total"] == out["total"]


def test_enqueue_bad_requests(api: Api, token: str) -> None:
    def post(body: object) -> tuple[int, str]:
        r = api.client.post("/v1/devices/dev1/jobs", json=body, headers=ADMIN)
        return r.status_code, r.text

    code, text = post({"space": "nosuchspace", "resolution": 32})
    assert code == 422 and "nosuchspace" in text
    code, text = post({"ops": ["conv|bogus"]})
    assert code == 422 and "ops[0]" in text
    code, text = post({"ops": [CONV, "mbconv|cin=16|1x16x32x32|float32"]})
    assert code == 422 and "ops[1]" in text
    code, text = post({"space": "fbnet", "resolution": 32, "ops": [CONV]})
    assert code == 422 and "exactly one of" in text
    code, text = post({})
    assert code == 422
    code, text = post({"space": "fbnet", "resolution": 32, "options": {"bogus": 1}})
    assert code == 422 and "option" in text
    assert api.count("work_items") == 0 and api.count("ops") == 0
    r = api.client.post("/v1/devices/ghost/jobs", json={"ops": [CONV]}, headers=ADMIN)
    assert r.status_code == 404


def cancel(api: Api, name: str = "dev1", **body: object) -> dict[str, int]:
    r = api.client.post(f"/v1/devices/{name}/jobs:cancel", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_cancel_the_newest_of_one_kind(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=[CONV])
    api.enqueue("dev1", ops=[op.key for op in sample_ops("mbconv", 10, seed=3)])
    mbconv_ids = api.client.get("/v1/devices/dev1/work", headers=ADMIN).json()
    newest = sorted(i["item_id"] for i in mbconv_ids if i["key"].startswith("mbconv"))[-4:]
    out = cancel(api, kind="mbconv", newest=4)
    assert out == {"cancelled": 4, "pending_left": 6, "leased": 0}
    left = {i["item_id"] for i in api.client.get("/v1/devices/dev1/work", headers=ADMIN).json()}
    assert not left & set(newest) and len(left) == 7  # the conv and 6 mbconv
    # a cancelled op can be queued again; the conv was never touched
    assert api.enqueue("dev1", ops=[CONV])["already_queued"] == 1
    assert cancel(api, kind="conv") == {"cancelled": 1, "pending_left": 0, "leased": 0}
    assert api.states("dev1") == {"pending": 6}


def test_cancel_leaves_leased_and_done_items_and_other_devices(api: Api, token: str) -> None:
    keys = [op.key for op in sample_ops("mbconv", 20, seed=4)]
    api.enqueue("dev1", ops=keys)
    api.make_device("dev2")
    api.enqueue("dev2", ops=keys[:5])
    api.measure(token, 4)  # done
    api.lease(token, 6)  # held by the agent
    out = cancel(api)
    assert out == {"cancelled": 10, "pending_left": 0, "leased": 6}
    assert api.states("dev1") == {"done": 4, "leased": 6}
    assert api.states("dev2") == {"pending": 5}
    assert api.count("measurements") == 4  # nothing measured is lost


def test_cancel_by_reason(api: Api, token: str) -> None:
    keys = [op.key for op in sample_ops("mbconv", 12, seed=5)]
    api.enqueue("dev1", ops=keys)
    api.measure(token, 8)
    r = api.client.post(
        "/v1/devices/dev1/jobs:retest", json={"kind": "mbconv", "n": 3}, headers=ADMIN
    )
    assert r.status_code == 200 and r.json()["queued"] == 3
    assert cancel(api, reason="retest") == {"cancelled": 3, "pending_left": 0, "leased": 0}
    assert api.states("dev1") == {"done": 8, "pending": 4}
    assert cancel(api, reason="queue", kind="network")["cancelled"] == 0


def test_cancel_bad_requests(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=[CONV])

    def post(name: str, body: object) -> tuple[int, str]:
        r = api.client.post(f"/v1/devices/{name}/jobs:cancel", json=body, headers=ADMIN)
        return r.status_code, r.text

    assert post("dev1", {"kind": "nope"})[0] == 422
    assert "unknown op kind" in post("dev1", {"kind": "nope"})[1]
    assert post("dev1", {"reason": "whim"})[0] == 422
    assert post("dev1", {"newest": 0})[0] == 422
    assert post("dev1", {"bogus": 1})[0] == 422
    assert post("ghost", {})[0] == 404
    r = api.client.post("/v1/devices/dev1/jobs:cancel", json={}, headers=bearer(token))
    assert r.status_code == 403  # an agent's token cannot empty the queue
    assert api.states("dev1") == {"pending": 1}
