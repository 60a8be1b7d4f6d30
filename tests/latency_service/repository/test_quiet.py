"""`hwlat train`'s shares on the quiet labels: the same held-out pairs, restricted to the
ops whose every measurement had a narrow CI."""

from __future__ import annotations

from typing import Any

import numpy as np

from latency_service.predictors.training import metrics
from latency_service.repository.quiet import MIN_QUIET
from profiler.sampling import sample_ops
from tests.latency_service.routes.test_predictors import law
from tests.latency_service.support import ADMIN, Api, bearer, stats


def measure(
    api: Api, token: str, labels: dict[str, tuple[float, float]], device: str = "dev1"
) -> None:
    """Upload each op's (median, relative CI half-width)."""
    api.enqueue(device, ops=list(labels))
    while (lease := api.lease(token, 256))["items"]:
        results = []
        for item in lease["items"]:
            median, ci = labels[item["key"]]
            one = stats(median, ci_half_width_ms=median * ci)
            results.append({"item_id": item["item_id"], "key": item["key"], "stats": one})
        r = api.client.post(
            f"/v1/agent/leases/{lease['lease_id']}/results",
            json={"run_id": "r1", "results": results},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text


def train(api: Api, device: str = "dev1") -> dict[str, Any]:
    r = api.client.post(f"/v1/devices/{device}/predictors:train", json={}, headers=ADMIN)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_quiet_shares_are_the_heldout_pairs_of_the_quiet_ops(api: Api, token: str) -> None:
    keys = [op.key for op in sample_ops("mbconv", 44, seed=2)]
    rng = np.random.default_rng(0)
    noisy = {k: law(k) * float(rng.choice([0.7, 1.35])) for k in keys[24:]}
    labels = {k: (law(k), 0.01) for k in keys[:24]}
    labels |= {k: (ms, 0.08) for k, ms in noisy.items()}  # wide, below the remeasure rule
    measure(api, token, labels)
    out = train(api)
    [p] = out["trained"]
    q = out["quiet_labels"]["mbconv"]
    assert (q["labels"], q["of"], q["ci_limit"]) == (24, 44, 0.05)

    r = api.client.get("/v1/devices/dev1/predictors", params={"heldout": True})
    pairs = np.asarray(r.json()[0]["heldout"])
    wide = np.asarray(list(noisy.values()))
    quiet = ~np.isclose(pairs[:, [0]], wide[None, :], rtol=1e-9, atol=0).any(axis=1)
    assert quiet.sum() == 24
    want = metrics(pairs[quiet, 1], pairs[quiet, 0])
    for name in ("rmspe", "within_5pct", "within_10pct"):
        assert abs(q[name] - want[name]) < 1e-12
    # the law is learnt from the quiet ops; the noisy ones are where it misses
    assert q["within_10pct"] > p["metrics"][p["model"]]["within_10pct"]


def test_all_quiet_equals_the_overall_shares_and_few_quiet_print_none(api: Api, token: str) -> None:
    keys = [op.key for op in sample_ops("mbconv", 40, seed=3)]
    measure(api, token, {k: (law(k), 0.01) for k in keys})
    out = train(api)
    [p] = out["trained"]
    q = out["quiet_labels"]["mbconv"]
    assert q["labels"] == q["of"] == 40
    overall = p["metrics"][p["model"]]
    assert all(q[n] == overall[n] for n in ("rmspe", "within_5pct", "within_10pct"))

    # one quiet label fewer than MIN_QUIET is too few to print a share
    other = api.make_device("dev2")
    few = {k: (law(k), 0.01 if i < MIN_QUIET - 1 else 0.09) for i, k in enumerate(keys)}
    measure(api, other, few, "dev2")
    assert train(api, "dev2")["quiet_labels"] == {}
