"""Ops measured while the machine was disturbed are measured again: at upload (their
batch's reference panel beyond the drift rule, or their own CI beyond the CI rule), and
by a sweep over what a device already has; within a per-op limit, never in a loop."""

from __future__ import annotations

from typing import Any

from latency_service.repository import predictors as predictors_repo
from latency_service.repository.devices import get_device
from profiler.sampling import sample_ops
from tests.latency_service.routes.test_drift import reading
from tests.latency_service.support import ADMIN, Api, MakeApi, bearer, stats

KEYS = [op.key for op in sample_ops("mbconv", 20, seed=8)]


def post(
    api: Api, token: str, n: int, run_id: str, scale: float | None, ci: float = 0.01
) -> dict[str, Any]:
    """Lease `n` items, upload each at 1 ms with a CI of `ci` (relative), with a panel
    reading at `scale` x the baseline (None: no reading)."""
    return upload(api, token, api.lease(token, n), run_id, scale, ci)


def upload(
    api: Api, token: str, lease: dict[str, Any], run_id: str, scale: float | None, ci: float
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "run_id": run_id,
        "results": [
            {"item_id": i["item_id"], "key": i["key"], "stats": stats(1.0, ci_half_width_ms=ci)}
            for i in lease["items"]
        ],
    }
    if scale is not None:
        body["reference"] = reading(scale)
    url = f"/v1/agent/leases/{lease['lease_id']}/results"
    r = api.client.post(url, json=body, headers=bearer(token))
    assert r.status_code == 200, r.text
    return {"keys": [i["key"] for i in lease["items"]], **r.json()}


def quiet_batches(api: Api, token: str, n: int = 5) -> None:
    for scale in (1.0, 1.01, 0.99, 1.0, 1.02)[:n]:
        assert post(api, token, 1, "run-1", scale)["remeasure"] == 0


def test_a_disturbed_batch_is_measured_again_and_the_repeat_is_used(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=KEYS[:9])
    quiet_batches(api, token)
    busy = post(api, token, 2, "run-1", 1.3)  # a neighbour: the panel reads 30% slow
    assert busy["accepted"] == 2 and busy["remeasure"] == 2
    assert api.states("dev1") == {"done": 7, "pending": 4}  # 2 fresh + the 2 again
    # the repeat comes from the queue like any item, and replaces the number
    api.lease(token, 2)  # the two never measured (queued first)
    lease = api.lease(token, 2)  # the same agent run measures them once more
    again = upload(api, token, lease, "run-1", 1.0, 0.01)
    assert sorted(again["keys"]) == sorted(busy["keys"])
    assert again["accepted"] == 2 and again["remeasure"] == 0
    replay = upload(api, token, lease, "run-1", 1.0, 0.01)  # its spool replays the batch
    assert replay["duplicates"] == 2 and replay["accepted"] == 0
    assert api.count("measurements") == 9
    # training takes both: one label per op, the median of its drift-divided values
    with api.app.state.sessions() as s:
        device = get_device(s, "dev1")
        rows = predictors_repo.training_rows(s, device, "mbconv")
        ops, y, record = predictors_repo.labels(s, device, 1, rows, None)
    assert len(rows.specs) == 9 and len(ops.specs) == 7 and record["repeats"] == "median"
    label = dict(zip((sp.key for sp in ops.specs), y, strict=True))
    factors = {1.0 / value for key, value in label.items() if key in busy["keys"]}
    quiet = {1.0 / value for key, value in label.items() if key not in busy["keys"]}
    # each busy op: the geometric mean of its busy and its quiet reading's division
    assert all(max(quiet) < f < 1.3 for f in factors), (factors, quiet)
    # a predictor recorded before repeats were combined rebuilds from the newest only
    older = {k: v for k, v in record.items() if k != "repeats"}
    with api.app.state.sessions() as s:
        _, y_old, _ = predictors_repo.labels(s, get_device(s, "dev1"), 1, rows, older, True)
    changed = {k for k, a, b in zip(label, y, y_old, strict=True) if abs(a - b) > 1e-12}
    assert changed == set(busy["keys"])


def test_a_young_baseline_calls_nothing_disturbed(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=KEYS[:4])
    quiet_batches(api, token, 2)
    assert post(api, token, 2, "run-1", 1.5)["remeasure"] == 0  # 3 readings: too few
    assert api.states("dev1") == {"done": 4}


def test_a_wide_ci_is_measured_again_up_to_the_limit(make_api: MakeApi) -> None:
    api = make_api(remeasure_max=1)
    token = api.make_device("dev1")
    api.enqueue("dev1", ops=KEYS[:2])
    first = post(api, token, 2, "run-1", None, ci=0.3)  # rounds disagreed: ±30%
    assert first["remeasure"] == 2
    second = post(api, token, 2, "run-2", None, ci=0.3)
    assert second["remeasure"] == 0  # measured 1 + 1 times: the limit
    assert api.states("dev1") == {"done": 4}
    assert api.lease(token, 4)["items"] == []  # nothing left to measure


def test_rules_at_zero_measure_nothing_again(make_api: MakeApi) -> None:
    api = make_api(remeasure_drift=0, remeasure_ci=0)
    token = api.make_device("dev1")
    api.enqueue("dev1", ops=KEYS[:8])
    quiet_batches(api, token)
    assert post(api, token, 3, "run-1", 1.9, ci=0.5)["remeasure"] == 0
    assert api.states("dev1") == {"done": 8}


def test_a_sweep_queues_what_was_measured_while_disturbed(make_api: MakeApi) -> None:
    off = make_api(remeasure_drift=0, remeasure_ci=0)  # an older service: nothing again
    token = off.make_device("dev1")
    off.enqueue("dev1", ops=KEYS[:12])
    quiet_batches(off, token)
    busy = post(off, token, 3, "run-1", 1.25)
    shaky = post(off, token, 2, "run-1", 1.0, ci=0.4)
    post(off, token, 2, "run-1", 1.0)
    api = make_api()  # the same database, the default rules
    url = "/v1/devices/dev1/jobs:remeasure"
    r = api.client.post(url, json={"kind": "mbconv"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "checked": 12,
        "disturbed": 3,
        "unstable": 2,
        "queued": 5,
        "at_limit": 0,
        "already_queued": 0,
    }
    queued = {i["key"] for i in api.lease(token, 16)["items"]}
    assert queued == set(busy["keys"]) | set(shaky["keys"])
    # swept again while they are out: nothing twice
    again = api.client.post(url, json={}, headers=ADMIN).json()
    assert again["queued"] == 0 and again["already_queued"] == 5


def test_a_sweep_refuses_bad_input(api: Api, token: str) -> None:
    url = "/v1/devices/dev1/jobs:remeasure"
    r = api.client.post(url, json={"kind": "nope"}, headers=ADMIN)
    assert r.status_code == 422 and "unknown op kind 'nope'" in r.json()["detail"]
    assert api.client.post(url, json={"extra": 1}, headers=ADMIN).status_code == 422
    r = api.client.post("/v1/devices/ghost/jobs:remeasure", json={}, headers=ADMIN)
    assert r.status_code == 404
    assert api.client.post(url, json={}).status_code == 401
    assert api.client.post(url, json={}, headers=bearer(token)).status_code in (401, 403)
