"""Latency reads: one key, a batch, and whole tables as JSON, CSV and ProxylessNAS YAML."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from latency_service.models import Measurement
from profiler.lutformats import create_format
from tests.latency_service.support import FBNET32, FBNET32_OPS, Api, MakeApi, bearer, stats

UNMEASURED = "conv|cin=8,cout=8,g=1,k=3,s=1|1x8x8x8|float32"


def test_latency_of_a_measured_op(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    [key] = api.measure(token, 1, run_id="run-x", median=2.5)
    r = api.client.get("/v1/devices/dev1/latency", params={"op": key})
    assert r.status_code == 200
    body = r.json()
    assert body["key"] == key and body["source"] == "measured"
    assert body["median_ms"] == 2.5 and body["p10_ms"] == 2.5 * 0.95
    assert body["p90_ms"] == 2.5 * 1.2 and body["samples"] == 30
    assert body["run_id"] == "run-x" and body["stable"] is True


def test_newest_measurement_wins(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=[UNMEASURED])
    api.measure(token, 1, run_id="old", median=1.0)
    assert api.enqueue("dev1", ops=[UNMEASURED])["already_measured"] == 1
    # a later run of the same op (e.g. a re-measurement): copy the row with new values
    with api.app.state.sessions() as s:
        old = s.scalars(select(Measurement)).one()
        cols = {c.key: getattr(old, c.key) for c in Measurement.__table__.columns}
        s.add(Measurement(**{**cols, "id": None, "run_id": "new", "median_ms": 3.0}))
        s.commit()
    r = api.client.get("/v1/devices/dev1/latency", params={"op": UNMEASURED})
    assert (r.json()["run_id"], r.json()["median_ms"]) == ("new", 3.0)
    assert api.device("dev1")["measurements"] == 2


def test_unmeasured_op_is_404_with_the_way_out(api: Api, token: str) -> None:
    r = api.client.get("/v1/devices/dev1/latency", params={"op": UNMEASURED})
    assert r.status_code == 404
    detail = r.json()["detail"]
    assert "hwlat jobs add" in detail and UNMEASURED in detail and "dev1" in detail


def test_latency_of_a_malformed_key_is_422(api: Api, token: str) -> None:
    r = api.client.get("/v1/devices/dev1/latency", params={"op": "conv|nope"})
    assert r.status_code == 422 and r.json()["detail"].startswith("op[0]: key:")
    r = api.client.get("/v1/devices/ghost/latency", params={"op": UNMEASURED})
    assert r.status_code == 404 and "no device" in r.json()["detail"]


def test_batch_with_missing_keys(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    measured = api.measure(token, 20)
    keys = [*measured, UNMEASURED, measured[0]]
    r = api.client.post("/v1/devices/dev1/latency:batch", json={"keys": keys})
    assert r.status_code == 200
    body = r.json()
    assert body["device"] == "dev1" and body["revision"] == 1
    assert set(body["results"]) == set(measured)
    assert all(v["median_ms"] == 1.0 for v in body["results"].values())
    assert body["missing"] == [UNMEASURED]


def test_batch_over_the_limit_is_422(make_api: MakeApi) -> None:
    api = make_api(max_batch_keys=5)
    api.make_device("dev1")
    r = api.client.post("/v1/devices/dev1/latency:batch", json={"keys": [UNMEASURED] * 6})
    assert r.status_code == 422 and "at most 5" in r.json()["detail"]
    r = api.client.post("/v1/devices/dev1/latency:batch", json={"keys": [UNMEASURED] * 5})
    assert r.status_code == 200 and r.json()["missing"] == [UNMEASURED]


def test_lut_json(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    measured = set(api.measure(token, 30))
    r = api.client.get("/v1/devices/dev1/lut", params=FBNET32)
    assert r.status_code == 200
    lut = r.json()
    assert (lut["space"], lut["resolution"], lut["classes"]) == ("fbnet", 32, 1000)
    assert lut["coverage"]["measured"] == 30 and lut["coverage"]["total"] == FBNET32_OPS
    assert lut["candidates"][-1] == "skip" and len(lut["layers"]) == 22

    cells = [c for layer in lut["layers"] for c in layer["cells"].values() if c is not None]
    cells += lut["fixed"]
    assert len({c["key"] for c in cells}) == FBNET32_OPS
    for c in cells:
        if c["key"] in measured:
            assert (c["source"], c["ms"]) == ("measured", 1.0)
        else:
            assert (c["source"], c["ms"]) == ("missing", None)
    illegal = [
        (layer["name"], name)
        for layer in lut["layers"]
        for name, c in layer["cells"].items()
        if c is None
    ]
    assert len(illegal) == 6 and {name for _, name in illegal} == {"skip"}


def test_lut_csv(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    measured = set(api.measure(token, 5))
    r = api.client.get("/v1/devices/dev1/lut", params={**FBNET32, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert r.text.splitlines()[0] == "layer,group,candidate,key,ms,source,ci_half_width_ms,stable"
    assert rows[0]["layer"] == "fixed"
    assert len(rows) == 2 + 22 * 9 - 6  # fixed ops plus every legal cell
    for row in rows:
        if row["key"] in measured:
            assert (row["source"], float(row["ms"])) == ("measured", 1.0)
        else:
            assert (row["source"], row["ms"]) == ("missing", "")


def test_lut_proxyless_yaml(api: Api, token: str) -> None:
    """Every measured op as ProxylessNAS has it; the head, one op here, is split into the
    format's Conv_1 (its whole latency) and Logits (0), so the sum is still the op's."""
    api.enqueue("dev1", **FBNET32)
    lease = api.lease(token, FBNET32_OPS)
    assert api.upload(token, lease, median=0.5)["accepted"] == FBNET32_OPS
    r = api.client.get("/v1/devices/dev1/lut", params={**FBNET32, "format": "proxyless-yaml"})
    assert r.status_code == 200
    text = r.text
    assert text.startswith("# hwlat LUT: device dev1")
    entries = create_format("proxyless-yaml").parse(text)
    assert any(k.startswith("expanded_conv-input:") for k in entries)
    assert len(entries) > 50
    [logits] = [k for k in entries if k.startswith("Logits-")]
    assert entries.pop(logits).ms == 0.0
    for e in entries.values():
        assert (e.ms, e.count) == (0.5, 30) and e.std_ms == pytest.approx(0.05)


def test_lut_proxyless_yaml_lists_only_measured(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    api.measure(token, 3)
    r = api.client.get("/v1/devices/dev1/lut", params={**FBNET32, "format": "proxyless-yaml"})
    entries = create_format("proxyless-yaml").parse(r.text)
    assert sorted(e.ms for e in entries.values() if e.ms) == [1.0] * 3  # a head adds Logits 0


def test_darts_lut_with_options(api: Api, token: str) -> None:
    params = {"space": "darts", "resolution": 8, "option": ["C=4", "cells=3"]}
    queued = api.enqueue("dev1", space="darts", resolution=8, options={"C": 4, "cells": 3})
    r = api.client.get("/v1/devices/dev1/lut", params=params)
    assert r.status_code == 200
    lut = r.json()
    assert lut["coverage"]["total"] == queued["total"]
    assert len(lut["layers"]) == 14 * 3
    assert lut["layers"][0]["cells"]["sep_conv_3x3"]["key"].startswith("sep_conv|c=4,")
    default = api.client.get("/v1/devices/dev1/lut", params={"space": "darts", "resolution": 8})
    assert default.json()["coverage"]["total"] != queued["total"]


def test_lut_bad_requests(api: Api, token: str) -> None:
    def get(**params: object) -> tuple[int, str]:
        r = api.client.get("/v1/devices/dev1/lut", params=params)
        return r.status_code, r.text

    assert get(space="nosuch", resolution=8)[0] == 422
    code, text = get(space="darts", resolution=8, option="C")
    assert code == 422 and "NAME=INT" in text
    code, text = get(space="darts", resolution=8, option="bogus=3")
    assert code == 422 and "option" in text
    assert get(space="fbnet", resolution=32, format="xml")[0] == 422
    r = api.client.get("/v1/devices/ghost/lut", params=FBNET32)
    assert r.status_code == 404


def test_stats_are_kept_exactly(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=[UNMEASURED])
    lease = api.lease(token)
    [item] = lease["items"]
    body = {
        "run_id": "r",
        "results": [
            {
                "item_id": item["item_id"],
                "key": item["key"],
                "stats": stats(0.123456789, ci_half_width_ms=None),
            }
        ],
    }
    url = f"/v1/agent/leases/{lease['lease_id']}/results"
    assert api.client.post(url, json=body, headers=bearer(token)).status_code == 200
    out = api.client.get("/v1/devices/dev1/latency", params={"op": UNMEASURED}).json()
    assert out["median_ms"] == 0.123456789 and out["ci_half_width_ms"] is None
