"""The agent side of the queue: lease, heartbeat, upload (idempotent), release, expiry."""

from __future__ import annotations

import time
from datetime import datetime

from tests.latency_service.support import FBNET32, FBNET32_OPS, Api, MakeApi, bearer, stats


def test_lease_respects_max_items_and_never_shares(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    a = api.lease(token, 10)
    b = api.lease(token, 10)
    assert len(a["items"]) == len(b["items"]) == 10
    assert a["lease_id"] and b["lease_id"] and a["lease_id"] != b["lease_id"]
    ids_a = {i["item_id"] for i in a["items"]}
    ids_b = {i["item_id"] for i in b["items"]}
    assert len(ids_a) == 10 and not ids_a & ids_b
    assert all(i["attempts"] == 1 and i["kind"] == "op" for i in a["items"])
    assert api.states("dev1") == {"leased": 20, "pending": FBNET32_OPS - 20}

    rest = api.lease(token, 256)
    assert len(rest["items"]) == FBNET32_OPS - 20
    assert not {i["item_id"] for i in rest["items"]} & (ids_a | ids_b)


def test_empty_queue_leases_nothing(api: Api, token: str) -> None:
    lease = api.lease(token)
    assert lease == {"lease_id": None, "expires_at": None, "items": []}


def test_lease_only_own_device(api: Api, token: str) -> None:
    other = api.make_device("dev2")
    api.enqueue("dev2", **FBNET32)
    assert api.lease(token)["items"] == []
    assert len(api.lease(other, 5)["items"]) == 5


def test_heartbeat_extends_expiry(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    lease = api.lease(token, 2)
    time.sleep(0.05)
    r = api.client.post(f"/v1/agent/leases/{lease['lease_id']}/heartbeat", headers=bearer(token))
    assert r.status_code == 200
    before = datetime.fromisoformat(lease["expires_at"])
    after = datetime.fromisoformat(r.json()["expires_at"])
    assert after > before
    unknown = api.client.post("/v1/agent/leases/nope/heartbeat", headers=bearer(token))
    assert unknown.status_code == 404 and "lease again" in unknown.json()["detail"]


def test_upload_results_and_errors(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    lease = api.lease(token, 4)
    counts = api.upload(token, lease, fail=1)
    assert counts == {
        "accepted": 3,
        "duplicates": 0,
        "rejected": 0,
        "failed": 0,
        "requeued": 1,
        "remeasure": 0,
    }
    assert api.count("measurements") == 3
    assert api.states("dev1") == {"done": 3, "pending": FBNET32_OPS - 3}
    dev = api.device("dev1")
    assert dev["measurements"] == 3


def test_reupload_same_run_is_idempotent(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    lease = api.lease(token, 3)
    first = api.upload(token, lease, run_id="run-a")
    assert first["accepted"] == 3
    rows = api.count("measurements")
    again = api.upload(token, lease, run_id="run-a")
    assert again == {
        "accepted": 0,
        "duplicates": 3,
        "rejected": 0,
        "failed": 0,
        "requeued": 0,
        "remeasure": 0,
    }
    assert api.count("measurements") == rows == 3


def test_error_three_times_fails_the_item(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=["conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float32"])
    seen = []
    for attempt in (1, 2, 3):
        lease = api.lease(token)
        [item] = lease["items"]
        assert item["attempts"] == attempt
        seen.append(api.upload(token, lease, fail=1, error_type="out_of_memory"))
    assert [c["requeued"] for c in seen] == [1, 1, 0]
    assert seen[-1]["failed"] == 1
    assert api.states("dev1") == {"failed": 1}
    assert api.lease(token)["items"] == []  # a failed item is not leased again
    assert api.count("work_items", "last_error = :e", e="out_of_memory: boom") == 1


def test_release_returns_items_to_pending(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    lease = api.lease(token, 4)
    ids = [i["item_id"] for i in lease["items"]]
    url = f"/v1/agent/leases/{lease['lease_id']}/release"
    r = api.client.post(url, json={"item_ids": ids[:1]}, headers=bearer(token))
    assert r.status_code == 200 and r.json()["requeued"] == 1
    assert api.states("dev1") == {"leased": 3, "pending": FBNET32_OPS - 3}
    r = api.client.post(url, json={}, headers=bearer(token))
    assert r.json()["requeued"] == 3
    assert api.states("dev1") == {"pending": FBNET32_OPS}
    # a release does not use up an attempt
    again = api.lease(token, 4)
    assert [i["item_id"] for i in again["items"]] == ids
    assert all(i["attempts"] == 1 for i in again["items"])


def test_expired_lease_goes_back_to_pending(make_api: MakeApi) -> None:
    api = make_api(lease_s=0.05)
    token = api.make_device("dev1")
    api.enqueue("dev1", **FBNET32)
    old = api.lease(token, 3)
    time.sleep(0.2)
    new = api.lease(token, 3)  # the next lease call expires the old one first
    assert [i["item_id"] for i in new["items"]] == [i["item_id"] for i in old["items"]]
    assert all(i["attempts"] == 2 for i in new["items"])
    # a late upload for the expired lease is rejected, nothing is stored
    late = api.upload(token, old)
    assert late["rejected"] == 3 and late["accepted"] == 0
    assert api.count("measurements") == 0


def test_lease_expiring_max_attempts_times_fails(make_api: MakeApi) -> None:
    api = make_api(lease_s=0.02, max_attempts=2)
    token = api.make_device("dev1")
    api.enqueue("dev1", ops=["conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float32"])
    for _ in range(2):
        assert len(api.lease(token)["items"]) == 1
        time.sleep(0.1)
    assert api.lease(token)["items"] == []
    assert api.states("dev1") == {"failed": 1}
    assert api.count("work_items", "last_error LIKE :e", e="lease expired%") == 1


def test_result_for_wrong_key_or_item(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    lease = api.lease(token, 2)
    a, b = lease["items"]
    url = f"/v1/agent/leases/{lease['lease_id']}/results"
    swapped = {
        "run_id": "r",
        "results": [{"item_id": a["item_id"], "key": b["key"], "stats": stats()}],
    }
    r = api.client.post(url, json=swapped, headers=bearer(token))
    assert r.status_code == 403
    unknown = {"run_id": "r", "results": [{"item_id": 10**9, "key": a["key"], "stats": stats()}]}
    r = api.client.post(url, json=unknown, headers=bearer(token))
    assert r.status_code == 404
    assert api.count("measurements") == 0
    assert api.states("dev1")["leased"] == 2
