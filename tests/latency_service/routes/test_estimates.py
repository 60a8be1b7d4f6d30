"""Whole-network estimates: table sums, calibration on end-to-end measurements."""

from __future__ import annotations

import random

from profiler.features import features
from profiler.ops import OpSpec
from searchers.spaces import create_space
from tests.latency_service.support import ADMIN, Api, bearer, stats

OVERHEAD_MS = 0.02  # per op, what a real runtime adds between ops


def op_ms(key: str) -> float:
    f = features(OpSpec.from_key(key))
    return 1e-9 * f.flops + 0.003


def measure_space_and_networks(
    api: Api, token: str, n_nets: int, resolution: int = 32, scale: float = 1.05
) -> list[dict]:
    api.enqueue("dev1", space="fbnet", resolution=resolution)
    space = create_space("fbnet", resolution=resolution)
    rng = random.Random(0)
    nets = [
        {
            "space": "fbnet",
            "resolution": resolution,
            "arch": {"choices": list(space.random_arch(rng.randrange(10**6)))},
        }
        for _ in range(n_nets)
    ]
    r = api.client.post("/v1/devices/dev1/jobs", json={"networks": nets}, headers=ADMIN)
    assert r.status_code == 200, r.text
    while (lease := api.lease(token, 256))["items"]:
        results = []
        for item in lease["items"]:
            if item["kind"] == "op":
                ms = op_ms(item["key"])
            else:  # the network really costs the sum plus a per-op overhead, and 5% more
                keys = [op.key for op in space.arch_ops(item["network"]["choices"])]
                ms = scale * sum(op_ms(k) for k in keys) + OVERHEAD_MS * len(keys)
            results.append({"item_id": item["item_id"], "key": item["key"], "stats": stats(ms)})
        r = api.client.post(
            f"/v1/agent/leases/{lease['lease_id']}/results",
            json={"run_id": "r1", "results": results},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text
    return nets


def test_table_sum_and_calibrated_estimate(api: Api, token: str) -> None:
    measure_space_and_networks(api, token, 8)
    space = create_space("fbnet", resolution=32)
    arch = {"choices": ["ir_k5_e6"] * 1 + ["ir_k3_e3"] * 21}
    keys = [op.key for op in space.arch_ops(arch)]
    true = 1.05 * sum(op_ms(k) for k in keys) + OVERHEAD_MS * len(keys)
    r = api.client.post(
        "/v1/devices/dev1/networks:estimate",
        json={"space": "fbnet", "resolution": 32, "arch": arch},
    )
    body = r.json()
    assert r.status_code == 200, r.text
    assert body["measured_ops"] == len(keys) and body["predicted_ops"] == 0
    assert abs(body["table_sum_ms"] - sum(op_ms(k) for k in keys)) < 1e-9
    assert abs(body["table_sum_ms"] - true) / true > 0.05  # the raw sum misses the overhead
    assert abs(body["calibrated_ms"] - true) / true < 0.01  # the calibration recovers it
    cal = body["calibration"]
    assert cal["available"] and cal["networks"] == 8 and cal["rmspe"] < 0.01
    assert cal["raw_rmspe"] > 0.05


def test_each_resolution_is_calibrated_on_its_own_networks(api: Api, token: str) -> None:
    """Networks at 64 cost 30% over their sum, at 32 only 5%: each estimate is
    calibrated on the networks of its own scope. An op list, which has no scope, is
    calibrated on all networks."""
    measure_space_and_networks(api, token, 8, resolution=32, scale=1.05)
    measure_space_and_networks(api, token, 6, resolution=64, scale=1.30)
    arch = {"choices": ["ir_k5_e6"] * 1 + ["ir_k3_e3"] * 21}
    for resolution, scale, fitted_on in ((32, 1.05, 8), (64, 1.30, 6)):
        keys = [op.key for op in create_space("fbnet", resolution=resolution).arch_ops(arch)]
        true = scale * sum(op_ms(k) for k in keys) + OVERHEAD_MS * len(keys)
        body = api.client.post(
            "/v1/devices/dev1/networks:estimate",
            json={"space": "fbnet", "resolution": resolution, "arch": arch},
        ).json()
        cal = body["calibration"]
        assert cal["scope"] == f"fbnet@{resolution} ×1 1000 classes"
        assert cal["networks"] == fitted_on and cal["rmspe"] < 0.01
        assert abs(body["calibrated_ms"] - true) / true < 0.01
        ops = api.client.post("/v1/devices/dev1/networks:estimate", json={"ops": keys}).json()
        assert ops["calibration"]["scope"] == "all networks"
        assert ops["calibration"]["networks"] == 14
    # fewer than 5 networks of a scope: the estimate falls back to all of them
    measure_space_and_networks(api, token, 3, resolution=48, scale=1.0)
    body = api.client.post(
        "/v1/devices/dev1/networks:estimate",
        json={"space": "fbnet", "resolution": 48, "arch": arch},
    ).json()
    assert body["calibration"]["scope"] == "all networks"
    assert body["calibration"]["networks"] == 17


def test_without_enough_networks_the_calibration_says_why(api: Api, token: str) -> None:
    measure_space_and_networks(api, token, 2)
    r = api.client.post(
        "/v1/devices/dev1/networks:estimate",
        json={"space": "fbnet", "resolution": 32, "arch": {"choices": ["ir_k3_e1"] * 22}},
    )
    body = r.json()
    assert body["calibrated_ms"] is None and not body["calibration"]["available"]
    assert "needs at least 5" in body["calibration"]["reason"]


def test_unmeasured_ops_and_bad_architectures(api: Api, token: str) -> None:
    r = api.client.post(
        "/v1/devices/dev1/networks:estimate",
        json={"space": "fbnet", "resolution": 32, "arch": {"choices": ["ir_k3_e1"] * 22}},
    )
    assert r.status_code == 404 and "neither measured nor predictable" in r.json()["detail"]
    r = api.client.post(
        "/v1/devices/dev1/networks:estimate",
        json={"space": "fbnet", "resolution": 32, "arch": {"choices": ["ir_k3_e1"] * 3}},
    )
    assert r.status_code == 422 and "expected 22 entries" in r.json()["detail"]
