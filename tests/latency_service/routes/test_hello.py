"""Agent registration: fingerprints, revisions, network work items and the late upload."""

from __future__ import annotations

import time
from typing import Any

from tests.latency_service.support import ADMIN, Api, bearer, stats

FP = {"machine": {"cpu_model": "x"}, "runtime": {"runtime": "ort-cpu", "threads": 1}}


def hello(api: Api, token: str, fp_id: str, **extra: Any) -> Any:
    body = {"fingerprint": FP, "fingerprint_id": fp_id, "runtime": "ort-cpu", **extra}
    return api.client.post("/v1/agent/hello", json=body, headers=bearer(token))


def test_first_fingerprint_is_adopted_and_a_different_one_refused(api: Api, token: str) -> None:
    r = hello(api, token, "aaaa0000")
    assert r.status_code == 200 and r.json()["revision"] == 1
    assert hello(api, token, "aaaa0000").status_code == 200  # same machine again: fine
    r = hello(api, token, "bbbb1111")
    assert r.status_code == 409 and "--new-revision" in r.json()["detail"]
    assert (
        api.device("dev1")["revision"] == 1 and api.device("dev1")["fingerprint_id"] == "aaaa0000"
    )


def test_new_revision_starts_a_clean_table(api: Api, token: str) -> None:
    hello(api, token, "aaaa0000")
    api.enqueue("dev1", ops=["conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float32"])
    api.measure(token, 1)
    assert api.device("dev1")["measurements"] == 1
    r = hello(api, token, "bbbb1111", new_revision=True)
    assert r.status_code == 200 and r.json()["revision"] == 2
    device = api.device("dev1")
    assert device["revision"] == 2 and device["measurements"] == 0  # old numbers not mixed in
    r = api.client.get(
        "/v1/devices/dev1/latency",
        params={"op": "conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float32"},
    )
    assert r.status_code == 404


def test_wrong_runtime_is_refused(api: Api, token: str) -> None:
    body = {"fingerprint": FP, "fingerprint_id": "aaaa0000", "runtime": "torch-cpu"}
    r = api.client.post("/v1/agent/hello", json=body, headers=bearer(token))
    assert r.status_code == 409 and "registered for runtime 'ort-cpu'" in r.json()["detail"]


def test_me_counts_pending_and_leased(api: Api, token: str) -> None:
    api.enqueue("dev1", space="fbnet", resolution=32)
    api.lease(token, 4)
    r = api.client.get("/v1/agent/me", headers=bearer(token))
    assert r.json()["pending"] == 100 and r.json()["leased"] == 4


def test_network_items_are_queued_leased_and_stored(api: Api, token: str) -> None:
    arch = {"choices": ["ir_k3_e1"] * 22}
    net = {"space": "fbnet", "resolution": 32, "arch": arch}
    r = api.client.post("/v1/devices/dev1/jobs", json={"networks": [net, net]}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["new"] == 1  # the same architecture once
    bad = {"space": "fbnet", "resolution": 32, "arch": {"choices": ["skip"] * 22}}
    r = api.client.post("/v1/devices/dev1/jobs", json={"networks": [bad]}, headers=ADMIN)
    assert r.status_code == 422 and "networks[0].arch: tbs2: 'skip' is illegal" in r.text
    lease = api.lease(token)
    item = lease["items"][0]
    assert item["kind"] == "network" and item["network"]["choices"] == arch["choices"]
    body = {"run_id": "r1", "results": [{"item_id": item["item_id"], "stats": stats(3.0)}]}
    url = f"/v1/agent/leases/{lease['lease_id']}/results"
    r = api.client.post(url, json=body, headers=bearer(token))
    assert r.json()["accepted"] == 1
    assert api.count("network_measurements") == 1
    r = api.client.post(url, json=body, headers=bearer(token))
    assert r.json()["duplicates"] == 1 and api.count("network_measurements") == 1


def test_failed_items_are_listed_with_their_error(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=["conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float32"])
    for _ in range(3):
        api.upload(token, api.lease(token), fail=1, error_type="export_error")
    r = api.client.get("/v1/devices/dev1/work", params={"state": "failed"})
    [item] = r.json()
    assert item["attempts"] == 3 and item["last_error"].startswith("export_error: boom")


def test_a_late_upload_is_kept_when_nobody_else_holds_the_item(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=["conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float32"])
    lease = api.lease(token)
    url = f"/v1/agent/leases/{lease['lease_id']}/release"
    assert api.client.post(url, json={}, headers=bearer(token)).json()["requeued"] == 1
    out = api.upload(token, lease)  # e.g. replayed from an agent's spool after a restart
    assert out["accepted"] == 1 and api.states("dev1") == {"done": 1}


def test_a_late_upload_is_refused_when_the_item_was_leased_again(make_api: Any) -> None:
    api = make_api(lease_s=0.01)
    token = api.make_device("dev1")
    api.enqueue("dev1", ops=["conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float32"])
    lease = api.lease(token)
    time.sleep(0.05)
    again = api.lease(token)  # the expired item goes to the next lease
    assert [i["item_id"] for i in again["items"]] == [i["item_id"] for i in lease["items"]]
    out = api.upload(token, lease)
    assert out["rejected"] == 1 and api.count("measurements") == 0
