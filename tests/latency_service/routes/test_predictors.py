"""Predictors through the API: trained from measurements, used for unmeasured ops,
always marked as predicted, rebuilt identically from storage in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from latency_service.config import ServiceSettings
from latency_service.main import create_app
from latency_service.predictors.registry import NET_MIN
from profiler.features import features
from profiler.ops import OpSpec
from profiler.sampling import sample_ops
from tests.latency_service.support import ADMIN, ADMIN_TOKEN, Api, bearer, stats, upgrade


def law(key: str) -> float:
    f = features(OpSpec.from_key(key))
    return 2e-9 * f.flops + 5e-8 * (f.input_bytes + f.output_bytes + f.weight_bytes) + 0.004


def measure_by_law(api: Api, token: str, keys: list[str]) -> None:
    api.enqueue("dev1", ops=keys)
    while (lease := api.lease(token, 256))["items"]:
        body = {
            "run_id": "r1",
            "results": [
                {"item_id": i["item_id"], "key": i["key"], "stats": stats(law(i["key"]))}
                for i in lease["items"]
            ],
        }
        r = api.client.post(
            f"/v1/agent/leases/{lease['lease_id']}/results", json=body, headers=bearer(token)
        )
        assert r.status_code == 200, r.text


def test_the_service_trains_the_request_as_asked(
    api: Api, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hwlat train` without --model reaches training as None (the default set, with its
    rules), not as the list of its names; a named request reaches it as named."""
    from latency_service.repository import predictors as repo

    asked: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["models"])
        return real(*args, **kwargs)

    real = repo.train
    monkeypatch.setattr(repo, "train", spy)
    trained_api(api, token)
    r = api.client.post("/v1/devices/dev1/predictors:train", json={"models": ["roofline"]},
                        headers=ADMIN)  # fmt: skip
    assert r.status_code == 200, r.text
    assert asked == [None, ["roofline"]]


def trained_api(api: Api, token: str) -> list[str]:
    """40 mbconv ops measured (a known law) and a predictor trained on them."""
    keys = [op.key for op in sample_ops("mbconv", 40, seed=1)]
    measure_by_law(api, token, keys)
    r = api.client.post("/v1/devices/dev1/predictors:train", json={}, headers=ADMIN)
    assert r.status_code == 200, r.text
    [trained] = r.json()["trained"]
    assert trained["kind"] == "mbconv" and trained["samples"] == 40
    return keys


def test_unmeasured_ops_get_predicted_values_marked_as_such(api: Api, token: str) -> None:
    keys = trained_api(api, token)
    unseen = sample_ops("mbconv", 5, seed=77)[0].key
    r = api.client.get("/v1/devices/dev1/latency", params={"op": unseen})
    body = r.json()
    assert r.status_code == 200 and body["source"] == "predicted"
    assert body["predictor"]["version"] == 1 and body["error_ms"] > 0
    assert "run_id" not in body and "samples" not in body  # no measured-only fields
    assert abs(body["median_ms"] - law(unseen)) / law(unseen) < 0.05  # the law is linear
    measured = api.client.get("/v1/devices/dev1/latency", params={"op": keys[0]}).json()
    assert measured["source"] == "measured" and measured["median_ms"] == law(keys[0])
    r = api.client.get("/v1/devices/dev1/latency", params={"op": unseen, "measured_only": True})
    assert r.status_code == 404
    r = api.client.post("/v1/devices/dev1/latency:batch", json={"keys": [keys[0], unseen]})
    sources = {k: v["source"] for k, v in r.json()["results"].items()}
    assert sources == {keys[0]: "measured", unseen: "predicted"}


def test_lut_cells_say_where_they_come_from(api: Api, token: str) -> None:
    trained_api(api, token)
    lut = api.client.get("/v1/devices/dev1/lut", params={"space": "fbnet", "resolution": 32}).json()
    cells = [c for layer in lut["layers"] for c in layer["cells"].values() if c is not None]
    assert {c["source"] for c in cells} >= {"predicted"}
    assert lut["coverage"]["measured"] == 0 and lut["coverage"]["predicted"] > 0
    assert all(c["source"] != "measured" for c in cells)  # nothing of fbnet was measured
    plain = api.client.get(
        "/v1/devices/dev1/lut", params={"space": "fbnet", "resolution": 32, "measured_only": True}
    ).json()
    assert plain["coverage"]["predicted"] == 0


def test_no_predictor_for_a_kind_says_how_to_train_one(api: Api, token: str) -> None:
    key = sample_ops("sep_conv", 1)[0].key
    r = api.client.get("/v1/devices/dev1/latency", params={"op": key})
    assert r.status_code == 404 and "hwlat train --device dev1" in r.json()["detail"]


def test_bad_training_requests(api: Api, token: str) -> None:
    measure_by_law(api, token, [op.key for op in sample_ops("mbconv", 5, seed=3)])
    r = api.client.post(
        "/v1/devices/dev1/predictors:train", json={"kinds": ["mbconv"]}, headers=ADMIN
    )
    assert r.status_code == 422 and "at least 30 needed" in r.json()["detail"]
    r = api.client.post("/v1/devices/dev1/predictors:train", json={}, headers=ADMIN)
    assert r.status_code == 200 and "mbconv" in r.json()["skipped"]
    r = api.client.post("/v1/devices/dev1/predictors:train", json={}, headers=bearer(token))
    assert r.status_code == 403
    r = api.client.post("/v1/devices/ghost/predictors:train", json={}, headers=ADMIN)
    assert r.status_code == 404
    for models, why in (
        (["nope"], "models: unknown candidate 'nope' (candidates: all, random_forest"),
        ([], "models: give at least one"),
    ):
        r = api.client.post(
            "/v1/devices/dev1/predictors:train", json={"models": models}, headers=ADMIN
        )
        assert r.status_code == 422 and why in r.json()["detail"]


def test_only_the_asked_candidates_and_kernel_tables_need_measured_kernels(
    api: Api, token: str
) -> None:
    measure_by_law(api, token, [op.key for op in sample_ops("mbconv", 40, seed=1)])
    url = "/v1/devices/dev1/predictors:train"
    body = {"kinds": ["mbconv"], "models": ["roofline", "kernel_table_gbm"]}
    r = api.client.post(url, json=body, headers=ADMIN)
    [p] = r.json()["trained"]  # no conv ops measured: the kernel table is left out
    assert set(p["metrics"]) == {"roofline"} and "kernels" not in p["drift"]
    r = api.client.post(url, json={**body, "models": ["kernel_table_gbm"]}, headers=ADMIN)
    assert r.status_code == 422
    assert "need at least 100 measured conv ops" in r.json()["detail"]
    assert "jobs sample --kind mbconv --kernels" in r.json()["detail"]
    r = api.client.post(url, json={"models": ["kernel_table_gbm"]}, headers=ADMIN)
    assert r.status_code == 200 and not r.json()["trained"]  # every kind: skipped, saying why
    assert "need at least 100 measured conv ops" in r.json()["skipped"]["mbconv"]


@pytest.mark.parametrize(
    ("model", "blocks"),
    [
        pytest.param(None, 0, id="blocks"),  # 0: trained_api
        pytest.param("kernel_table_gbm", 40, id="kernel-table"),
        pytest.param("kernel_net_joint", NET_MIN, id="kernel-net-joint", marks=pytest.mark.slow),
    ],
)
def test_a_predictor_is_rebuilt_identically_in_a_fresh_process(
    tmp_path: Path, model: str | None, blocks: int
) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    upgrade(url)
    api = Api(create_app(ServiceSettings(database_url=url, admin_token=ADMIN_TOKEN)))
    token = api.make_device("dev1")
    kernels = model is not None
    if kernels:  # conv ops measured alone, and an mbconv predictor built on them
        measure_by_law(
            api, token, [op.key for op in sample_ops("mbconv", 110, seed=4, kernels=True)]
        )
        measure_by_law(api, token, [op.key for op in sample_ops("mbconv", blocks, seed=1)])
        body = {"kinds": ["mbconv"], "models": [model]}
        r = api.client.post("/v1/devices/dev1/predictors:train", json=body, headers=ADMIN)
        [p] = r.json()["trained"]
        assert p["model"] == model and p["drift"]["kernels"]["watermark"] > 0
        # conv ops measured after training must not change the rebuilt predictor
        measure_by_law(
            api, token, [op.key for op in sample_ops("mbconv", 30, seed=5, kernels=True)]
        )
    else:
        trained_api(api, token)
    unseen = [op.key for op in sample_ops("mbconv", 8, seed=123)]
    here = api.client.post("/v1/devices/dev1/latency:batch", json={"keys": unseen}).json()
    code = f"""
import json
from fastapi.testclient import TestClient
import pytest

from latency_service.config import ServiceSettings
from latency_service.main import create_app
c = TestClient(create_app(ServiceSettings(database_url={url!r})))
print(json.dumps(c.post("/v1/devices/dev1/latency:batch", json={{"keys": {unseen!r}}}).json()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    there: dict[str, Any] = json.loads(out.stdout)
    assert there["results"] == here["results"]  # same predictor, same numbers, to the bit
    r = api.client.get("/v1/devices/dev1/predictors", params={"heldout": True}).json()
    assert len(r) == 1 and len(r[0]["heldout"]) == (blocks or 40)  # trained_api: 40 ops
