"""Adaptive refinement: after training, queue more ops near those the predictor gets most
wrong (held-out error), through the API and through `hwlat jobs sample --refine`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from hwlat.cli import main
from latency_service.client import HwlatClient
from latency_service.models import Predictor
from profiler.features import features
from profiler.ops import OpSpec
from profiler.sampling import sample_ops
from tests.latency_service.support import ADMIN, ADMIN_TOKEN, Api, bearer, stats

REFINE = "/v1/devices/dev1/jobs:refine"


def law(key: str, slow: set[str]) -> float:
    """A smooth latency law in the analytic costs; the ops in `slow` 5x slower."""
    f = features(OpSpec.from_key(key))
    ms = 2e-9 * f.flops + 5e-8 * (f.input_bytes + f.output_bytes + f.weight_bytes) + 0.004
    return ms * (5 if key in slow else 1)


def train_with_outliers(api: Api, token: str, outliers: int = 3) -> list[str]:
    """40 mbconv ops measured by a smooth law, except the first `outliers` (5x slower),
    and a roofline predictor trained on them; returns the outliers' keys."""
    specs = sample_ops("mbconv", 40, seed=1)
    slow = {op.key for op in specs[:outliers]}
    api.enqueue("dev1", ops=[op.key for op in specs])
    lease = api.lease(token, 100)
    results = [
        {"item_id": i["item_id"], "key": i["key"], "stats": stats(law(i["key"], slow))}
        for i in lease["items"]
    ]
    r = api.client.post(
        f"/v1/agent/leases/{lease['lease_id']}/results",
        json={"run_id": "r1", "results": results},
        headers=bearer(token),
    )
    assert r.status_code == 200 and r.json()["accepted"] == 40, r.text
    # the roofline knows the smooth law exactly, so the outliers are its worst held out
    body = {"models": ["roofline"]}
    r = api.client.post("/v1/devices/dev1/predictors:train", json=body, headers=ADMIN)
    assert r.status_code == 200 and r.json()["trained"][0]["samples"] == 40, r.text
    return sorted(slow)


def heldout_errors(api: Api) -> dict[str, float]:
    """|predicted / measured - 1| per training op (training rows are ordered by key)."""
    [pred] = api.client.get("/v1/devices/dev1/predictors", params={"heldout": True}).json()
    keys = sorted(op.key for op in sample_ops("mbconv", 40, seed=1))
    return {k: abs(p / m - 1) for k, (m, p) in zip(keys, pred["heldout"], strict=True)}


def near(op: OpSpec, seed: OpSpec) -> bool:
    """`op` is `seed` with one or two parameters (the input side counts as one) moved."""
    moved = {name for name, value in op.params if seed.p[name] != value}
    moved |= {"side"} if op.shape[2:] != seed.shape[2:] else set()
    return op.kind == seed.kind and op.dtype == seed.dtype and 1 <= len(moved) <= 2


def test_refine_queues_new_ops_near_the_worst_heldout_ops(
    api: Api, token: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = train_with_outliers(api, token)
    errors = heldout_errors(api)
    worst = sorted(errors, key=lambda k: -errors[k])[:3]
    assert sorted(worst) == slow  # the outliers are what the predictor gets most wrong
    body = {"kind": "mbconv", "n": 30, "seed": 7, "worst_fraction": 0.075}  # 3 of 40
    r = api.client.post(REFINE, json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["worst"] == 3
    assert result["worst_mean_abs_error"] == pytest.approx(sum(errors[k] for k in worst) / 3)
    assert {k: result[k] for k in ("total", "new", "already_measured", "already_queued")} == {
        "total": 30,
        "new": 30,
        "already_measured": 0,
        "already_queued": 0,
    }
    queued = [OpSpec.from_key(i["key"]) for i in api.lease(token, 100)["items"]]
    assert len(queued) == 30 and not {op.key for op in queued} & set(errors)
    seeds = [OpSpec.from_key(k) for k in worst]
    assert all(any(near(op, s) for s in seeds) for op in queued)
    one = api.client.post(  # a fraction below one op still takes the worst one
        REFINE, json={"kind": "mbconv", "n": 4, "worst_fraction": 0.001}, headers=ADMIN
    ).json()
    assert one["worst"] == 1 and one["worst_mean_abs_error"] == pytest.approx(errors[worst[0]])

    # the same request through `hwlat jobs sample --refine`: same seed, same ops, all queued
    cli = command(api, capsys, monkeypatch)
    code, out, _ = cli("--n", "30", "--seed", "7", "--worst-fraction", "0.075", "--json")
    assert code == 0 and json.loads(out) == {**result, "new": 0, "already_queued": 30}
    code, out, _ = cli("--n", "30", "--seed", "7", "--worst-fraction", "0.075")
    assert code == 0 and "worst ops" in out and "already queued" in out and "30" in out

    with Session(api.app.state.engine) as s:  # a predictor out of step with its rows
        row = s.scalars(select(Predictor)).one()
        row.heldout = row.heldout[:-1]
        s.commit()
    r = api.client.post(REFINE, json={"kind": "mbconv", "n": 5}, headers=ADMIN)
    assert r.status_code == 409 and "hwlat train --device dev1 --kind mbconv" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"kind": "mbconv", "n": 10}, 404, "run `hwlat train --device dev1 --kind mbconv` first"),
        ({"kind": "head", "n": 10}, 422, "kind: cannot refine 'head'"),
        ({"kind": "mbconv", "n": 0}, 422, None),
        ({"kind": "mbconv", "n": 100_001}, 422, None),
        ({"kind": "mbconv", "n": 10, "worst_fraction": 0}, 422, None),
        ({"kind": "mbconv", "n": 10, "worst_fraction": 1.5}, 422, None),
        ({"kind": "mbconv", "n": 10, "extra": 1}, 422, None),
    ],
)
def test_bad_refine_requests(
    api: Api, token: str, body: dict[str, Any], status: int, message: str | None
) -> None:
    r = api.client.post(REFINE, json=body, headers=ADMIN)
    assert r.status_code == status, r.text
    if message is not None:
        assert message in r.json()["detail"]


def test_refine_needs_the_admin_token(api: Api, token: str) -> None:
    body = {"kind": "mbconv", "n": 10}
    assert api.client.post(REFINE, json=body, headers=bearer(token)).status_code == 403
    assert api.client.post(REFINE, json=body).status_code == 401
    r = api.client.post("/v1/devices/ghost/jobs:refine", json=body, headers=ADMIN)
    assert r.status_code == 404 and "ghost" in r.json()["detail"]


def forwarding_client(app_client: TestClient) -> HwlatClient:
    """An HwlatClient whose requests go to the in-process app (no server to start)."""

    def forward(request: httpx.Request) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items() if k in ("authorization",)}
        r = app_client.request(
            request.method,
            request.url.raw_path.decode(),
            headers={**headers, "content-type": "application/json"},
            content=request.content,
        )
        return httpx.Response(r.status_code, json=r.json())

    return HwlatClient(
        "http://hwlat", admin_token=ADMIN_TOKEN, retries=0, transport=httpx.MockTransport(forward)
    )


Command = Callable[..., tuple[int, str, str]]


def command(
    api: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Command:
    """`hwlat jobs sample --device dev1 --kind mbconv --refine ARGS...` against `api`."""
    monkeypatch.setattr(
        "hwlat.commands.jobs.client", lambda *a, **kw: forwarding_client(api.client)
    )

    def run(*args: str) -> tuple[int, str, str]:
        base = ["jobs", "sample", "--device", "dev1", "--kind", "mbconv", "--refine"]
        code = main([*base, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_jobs_sample_refine_errors_are_one_line(
    api: Api, token: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = command(api, capsys, monkeypatch)
    code, _, err = cli("--n", "12")
    assert code == 1 and err.startswith("error: HTTP 404: ") and "hwlat train --device dev1" in err
    code, _, err = cli("--n", "12", "--dtype", "float16")
    assert code == 1 and err.startswith("error: --dtype: --refine samples in the dtype")
    assert len(err.strip().splitlines()) == 1
