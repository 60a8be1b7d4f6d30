"""Retests: random measured ops of a kind queued once more (never unmeasured ones, never
twice), and how well a device's labels repeat — per kind, with each batch's drift divided
out and the CIs' coverage — reported on its own and beside a training's accuracy."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from profiler.sampling import sample_ops
from tests.latency_service.repository.test_remeasure import quiet_batches
from tests.latency_service.routes.test_drift import post, reading
from tests.latency_service.routes.test_predictors import law, measure_by_law
from tests.latency_service.support import ADMIN, Api, bearer, stats

MBCONV = [op.key for op in sample_ops("mbconv", 12, seed=3)]
SHUFFLE = [op.key for op in sample_ops("shuffle", 3, seed=3)]
RETESTED = (
    "SELECT o.key FROM work_items w JOIN ops o ON o.id = w.op_id "
    "JOIN devices d ON d.id = w.device_id WHERE w.reason = 'retest' AND d.name = :device "
    "ORDER BY o.key"
)


def retest(
    api: Api, kind: str = "mbconv", n: int = 100, seed: int = 0, device: str = "dev1"
) -> Any:
    body = {"kind": kind, "n": n, "seed": seed}
    return api.client.post(f"/v1/devices/{device}/jobs:retest", json=body, headers=ADMIN)


def retested_keys(api: Api, device: str = "dev1") -> list[str]:
    """Keys of the device's retest work items, sorted."""
    with api.app.state.engine.connect() as conn:
        return list(conn.execute(text(RETESTED), {"device": device}).scalars())


def measure_all(api: Api, token: str, run_id: str, scale: float | None, ms: Any) -> list[str]:
    """Lease everything queued and upload it, `ms(key)` each, with a panel at `scale`."""
    lease = api.lease(token, 256)
    ref = None if scale is None else reading(scale)
    assert post(api, token, lease, run_id, ref, ms).status_code == 200
    return [i["key"] for i in lease["items"]]


def test_a_retest_queues_random_measured_ops_of_the_kind_once(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=MBCONV[:8] + SHUFFLE)
    measure_all(api, token, "r1", 1.0, lambda key: 1.0)
    api.enqueue("dev1", ops=MBCONV[8:])  # queued, never measured: not retested
    first = retest(api, n=5, seed=1)
    assert first.status_code == 200, first.text
    assert first.json() == {"measured": 8, "already_retested": 0, "already_queued": 0, "queued": 5}
    assert api.count("work_items", "reason = 'retest'") == 5
    second = retest(api, n=5, seed=1).json()  # the 5 are still queued: the other 3
    assert second == {"measured": 8, "already_retested": 0, "already_queued": 5, "queued": 3}
    keys = measure_all(api, token, "r2", 1.0, lambda key: 1.0)  # the 8 again, 4 new
    assert sorted(keys) == sorted(MBCONV)
    third = retest(api, n=5).json()  # only the 4 measured since have had no retest
    assert third == {"measured": 12, "already_retested": 8, "already_queued": 0, "queued": 4}
    assert api.count("work_items", "reason = 'queue'") == 15  # the others keep their reason


def test_retests_are_leased_before_the_rest_of_the_queue(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=MBCONV[:6])
    measure_all(api, token, "r1", None, lambda key: 1.0)
    api.enqueue("dev1", ops=MBCONV[6:] + SHUFFLE)  # 9 queued first
    assert retest(api, n=3, seed=2).json()["queued"] == 3
    first = api.lease(token, 3)["items"]
    assert sorted(i["key"] for i in first) == retested_keys(api)
    rest = api.lease(token, 20)["items"]
    assert sorted(i["key"] for i in rest) == sorted(MBCONV[6:] + SHUFFLE)


def test_the_same_seed_picks_the_same_ops(api: Api, token: str) -> None:
    tokens = {"dev1": token, "dev2": api.make_device("dev2")}
    picked = []
    for device, tok in tokens.items():
        api.enqueue(device, ops=MBCONV)
        measure_all(api, tok, "r1", None, lambda key: 1.0)
        assert retest(api, n=4, seed=7, device=device).json()["queued"] == 4
        picked.append(retested_keys(api, device))
    assert picked[0] == picked[1] and len(picked[0]) == 4


def test_bad_retests_are_refused_and_queue_nothing(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=MBCONV[:2])
    measure_all(api, token, "r1", None, lambda key: 1.0)
    cases = [
        (retest(api, kind="nope"), 422, "kind: unknown op kind 'nope'"),
        (retest(api, kind="shuffle"), 422, "hwlat jobs sample --device dev1 --kind shuffle"),
        (retest(api, n=0), 422, "greater than or equal to 1"),
        (retest(api, device="nobody"), 404, "no device 'nobody'"),
        (api.client.post("/v1/devices/dev1/jobs:retest", json={"kind": "mbconv"}), 401, ""),
    ]
    for r, code, message in cases:
        assert r.status_code == code, r.text
        assert message in r.text
    assert api.count("work_items", "reason = 'retest'") == 0


def test_repeatability_compares_retests_with_their_labels_drift_divided(
    api: Api, token: str
) -> None:
    api.enqueue("dev1", ops=MBCONV[:10])
    measure_all(api, token, "r1", 1.0, lambda key: 1.0)
    assert api.client.get("/v1/devices/dev1/repeatability").json()["kinds"] == {}
    assert retest(api, n=10).json()["queued"] == 10
    # five retests in a batch 30% slow (its panel says so); five on a quiet machine
    slow = measure_all_n(api, token, 5, 1.3, lambda key: 1.3)
    quiet = sorted(set(MBCONV[:10]) - set(slow))
    again = dict(zip(quiet, (1.0, 1.04, 1.08, 1.2, 0.85), strict=True))
    measure_all(api, token, "r2", 1.0, lambda key: again[key])
    r = api.client.get("/v1/devices/dev1/repeatability", params={"kind": "mbconv"})
    assert r.status_code == 200, r.text
    got = r.json()["kinds"]["mbconv"]
    assert got["pairs"] == 10
    assert got["within_5pct"] == 0.7 and got["within_10pct"] == 0.8  # the slow batch divided
    assert abs(got["median_ratio"] - 1.0) < 0.01
    assert got["ci_coverage"] == 0.1  # 1% CIs cover only the retest that came out equal
    bad = api.client.get("/v1/devices/dev1/repeatability", params={"kind": "nope"})
    assert bad.status_code == 422 and "unknown op kind" in bad.text


def measure_all_n(api: Api, token: str, n: int, scale: float, ms: Any) -> list[str]:
    lease = api.lease(token, n)
    assert post(api, token, lease, "r2", reading(scale), ms).status_code == 200
    return [i["key"] for i in lease["items"]]


def test_the_rules_repeats_are_not_retests(api: Api, token: str) -> None:
    """An op measured again because its batch was disturbed is no fair sample."""
    api.enqueue("dev1", ops=MBCONV[:9])
    quiet_batches(api, token)
    busy = api.lease(token, 2)
    assert post(api, token, busy, "run-1", reading(1.3)).json()["remeasure"] == 2
    measure_all(api, token, "run-1", 1.0, lambda key: 1.0)
    assert api.count("work_items", "reason = 'remeasure'") == 2
    assert api.client.get("/v1/devices/dev1/repeatability").json()["kinds"] == {}


def test_training_prints_how_well_the_labels_repeat(api: Api, token: str) -> None:
    keys = [op.key for op in sample_ops("mbconv", 40, seed=1)]
    measure_by_law(api, token, keys)
    assert retest(api, n=10, seed=2).json()["queued"] == 10
    lease = api.lease(token, 256)
    body = {
        "run_id": "r2",
        "results": [
            {"item_id": i["item_id"], "key": i["key"], "stats": stats(law(i["key"]) * 1.02)}
            for i in lease["items"]
        ],
    }
    url = f"/v1/agent/leases/{lease['lease_id']}/results"
    assert api.client.post(url, json=body, headers=bearer(token)).status_code == 200
    r = api.client.post("/v1/devices/dev1/predictors:train", json={}, headers=ADMIN)
    assert r.status_code == 200, r.text
    got = r.json()["repeatability"]["mbconv"]
    assert got["pairs"] == 10 and got["within_5pct"] == 1.0
    assert abs(got["median_ratio"] - 1.02) < 1e-9


def test_measured_values_carry_how_far_their_kind_repeats(api: Api, token: str) -> None:
    """The CI of one measurement says nothing of the spread between batches; once a kind
    has enough retest pairs, its measured values carry their RMS difference."""
    keys = [op.key for op in sample_ops("mbconv", 25, seed=4)]
    api.enqueue("dev1", ops=keys + SHUFFLE)
    measure_all(api, token, "r1", None, lambda key: 1.0)
    assert retest(api, n=19).json()["queued"] == 19
    measure_all(api, token, "r2", None, lambda key: 1.1)

    def served(key: str) -> Any:
        r = api.client.get("/v1/devices/dev1/latency", params={"op": key})
        assert r.status_code == 200, r.text
        return r.json()["repeat_rel_error"]

    assert served(keys[0]) is None  # 19 pairs: too few to say
    assert retest(api, n=1).json()["queued"] == 1
    measure_all(api, token, "r2", None, lambda key: 1.1)
    assert abs(served(keys[0]) - 0.1) < 1e-9
    assert served(SHUFFLE[0]) is None  # no retests of that kind
