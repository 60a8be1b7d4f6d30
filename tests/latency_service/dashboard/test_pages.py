"""The dashboard's pages as the service renders them (SQLite and PostgreSQL): what each
page says, the data its charts get, and that nothing on them changes data.
Rendering in a real browser is tested in tests/latency_service/dashboard/test_browser.py."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

import pytest

from latency_service.dashboard.data import genotype_drawing
from profiler.sampling import sample_ops
from searchers.spaces import create_space
from tests.latency_service.routes.test_estimates import measure_space_and_networks, op_ms
from tests.latency_service.routes.test_predictors import law
from tests.latency_service.support import ADMIN, FBNET32, FBNET32_OPS, Api, MakeApi, bearer, stats

UNSTABLE = 2  # fbnet ops uploaded as unstable
FAILED = 1
HELD_BACK = 6  # fbnet mbconv ops left unmeasured: the predictor fills them in


def page_data(html: str, element: str = "page-data") -> Any:
    found = re.search(rf'<script type="application/json" id="{element}">(.*?)</script>', html, re.S)
    assert found, f"no #{element} in the page"
    return json.loads(found.group(1))


def populate(api: Api, token: str) -> None:
    """fbnet@32 measured by a known law, but for a few held-back mbconv ops, a few
    unstable ones and one failure; 40 sampled mbconv ops; predictors trained."""
    api.enqueue("dev1", **FBNET32)
    api.enqueue("dev1", ops=[op.key for op in sample_ops("mbconv", 40, seed=1)])
    held, unstable = 0, 0
    while (lease := api.lease(token, 256))["items"]:
        results, errors = [], []
        for item in lease["items"]:
            key = item["key"]
            if key.startswith("mbconv") and "1x" in key and held < HELD_BACK and "e=6" in key:
                held += 1  # stays leased, never measured
                continue
            if len(errors) < FAILED and key.startswith("conv"):
                errors.append(
                    {"item_id": item["item_id"], "type": "runtime_error", "message": "boom"}
                )
                continue
            ok = unstable >= UNSTABLE or not key.startswith("mbconv")
            unstable += not ok
            results.append(
                {"item_id": item["item_id"], "key": key, "stats": stats(law(key), stable=ok)}
            )
        r = api.client.post(
            f"/v1/agent/leases/{lease['lease_id']}/results",
            json={"run_id": "r1", "results": results, "errors": errors},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text
        if not results:
            break
    assert held == HELD_BACK and unstable == UNSTABLE
    r = api.client.post("/v1/devices/dev1/predictors:train", json={}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["trained"], r.text


@pytest.fixture
def populated(make_api: MakeApi) -> Api:
    api = make_api(max_attempts=1)
    populate(api, api.make_device("dev1"))
    return api


def test_devices_page_lists_each_device_with_coverage_and_work(populated: Api) -> None:
    populated.make_device("idle-phone", runtime="ort-mobile")
    r = populated.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert 'href="/devices/dev1"' in html and "idle-phone" in html
    assert "fbnet@32 ×1" in html
    measured = FBNET32_OPS - HELD_BACK - FAILED
    assert f"{measured}/{FBNET32_OPS}" in html
    device = populated.device("dev1")
    row = html[html.index('data-device="dev1"') : html.index('data-device="idle-phone"')]
    assert f">{device['work']['leased']}<" in row and f">{FAILED}<" in row
    assert "no agent has said hello yet" in html  # idle-phone never ran an agent


def test_device_page_shows_every_cell_of_the_table(populated: Api) -> None:
    html = populated.client.get("/devices/dev1").text
    [table] = page_data(html)
    lut = populated.client.get("/v1/devices/dev1/lut", params=FBNET32).json()
    assert table["layers"] == [layer["name"] for layer in lut["layers"]]
    assert table["candidates"] == lut["candidates"]
    legal = sum(c is not None for layer in lut["layers"] for c in layer["cells"].values())
    assert table["legal"] == legal
    assert (
        sum(v is not None for row in table["z"] for v in row) == legal - table["counts"]["missing"]
    )
    assert table["counts"]["predicted"] > 0 and table["counts"]["flagged"] >= UNSTABLE
    for row, lut_layer in zip(table["state"], lut["layers"], strict=True):
        for state, name in zip(row, table["candidates"], strict=True):
            cell = lut_layer["cells"][name]
            assert (state is None) == (cell is None)
            if cell is not None and cell["source"] == "predicted":
                assert state == "predicted"  # predicted values never pass as measured
    assert f'data-legal="{legal}"' in html
    assert "boom" in html and 'class="failed-item"' in html  # the failed item and its error


def test_predictor_page_has_held_out_pairs(populated: Api) -> None:
    html = populated.client.get("/devices/dev1/predictors").text
    [mbconv] = [p for p in page_data(html, "scatter-data") if p["kind"] == "mbconv"]
    [meta] = [
        p
        for p in populated.client.get("/v1/devices/dev1/predictors").json()
        if p["kind"] == "mbconv"
    ]
    assert len(mbconv["x"]) == len(mbconv["y"]) == meta["samples"]
    assert 'data-kind="mbconv"' in html and "RMSPE" in html


def test_validation_page_without_networks_says_how_to_get_them(populated: Api) -> None:
    html = populated.client.get("/devices/dev1/validation").text
    assert "no end-to-end network measurements yet" in html and "hwlat validate" in html
    assert page_data(html) == []


def test_validation_page_reports_raw_and_calibrated_errors(api: Api, token: str) -> None:
    measure_space_and_networks(api, token, 7)
    html = api.client.get("/devices/dev1/validation").text
    rows = page_data(html)
    assert len(rows) == 7 and all(r["calibrated_ms"] is not None for r in rows)
    assert "raw table sum" in html and "calibrated (leave-one-out)" in html and "Kendall τ" in html
    raw = [abs(r["table_sum_ms"] / r["measured_ms"] - 1) for r in rows]
    assert f"{max(raw):.0%}" in html  # the max |error| of the raw sums, as a person reads it


def test_pages_are_read_only_and_serve_their_own_javascript(populated: Api) -> None:
    c = populated.client
    for path in ("/", "/devices/dev1", "/devices/dev1/predictors", "/devices/dev1/validation"):
        assert c.post(path).status_code == 405
        html = c.get(path).text
        assert not re.search(r'(src|href)="(https?:)?//', html), "nothing from another host"
    js = c.get(re.search(r'src="(/static/plotly-[^"]+)"', c.get("/devices/dev1").text).group(1))
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert len(js.content) > 1_000_000 and b"plotly" in js.content[:2000].lower()
    assert c.get("/static/0.0.0/dashboard.js").status_code == 404


def test_unknown_device_page_is_404_saying_what_exists(api: Api) -> None:
    r = api.client.get("/devices/ghost")
    assert r.status_code == 404 and "hwlat devices list" in r.json()["detail"]


def test_pages_follow_the_read_policy(make_api: MakeApi) -> None:
    api = make_api(read_access="token", read_token="reader")
    c = api.client
    r = c.get("/devices/dev1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    login = c.get("/login")
    assert login.status_code == 200 and 'type="password"' in login.text
    assert c.get(re.search(r'src="(/static/[^"]+dashboard.js)"', login.text).group(1)).is_success
    assert c.get("/", headers=bearer("reader")).status_code == 200
    c.cookies.set("hwlat_token", "reader")
    assert c.get("/", follow_redirects=False).status_code == 200
    assert c.get("/v1/devices").status_code == 200  # the cookie serves API reads too...
    r = c.post("/v1/devices", json={"name": "x", "runtime": "ort-cpu"})
    assert r.status_code == 401  # ...but never a write
    c.cookies.set("hwlat_token", ADMIN["Authorization"].removeprefix("Bearer "))
    assert c.post("/v1/devices", json={"name": "x", "runtime": "ort-cpu"}).status_code == 401
    c.cookies.set("hwlat_token", "wrong")
    assert c.get("/", follow_redirects=False).status_code == 303


DARTS8 = {"space": "darts", "resolution": 8, "options": {"C": 4, "cells": 3}}


def measure_a_darts_network(api: Api, token: str) -> dict[str, Any]:
    """A small darts space's ops and one random genotype of it, measured end to end."""
    api.enqueue("dev1", **DARTS8)
    g = create_space("darts", resolution=8, C=4, cells=3).random_arch(3)
    arch = {"normal": [list(p) for p in g.normal], "reduce": [list(p) for p in g.reduce]}
    api.enqueue("dev1", networks=[{**DARTS8, "arch": arch}])
    while (lease := api.lease(token, 256))["items"]:
        results = [
            {"item_id": i["item_id"], "key": i["key"],
             "stats": stats(op_ms(i["key"]) if i["kind"] == "op" else 1.0)}
            for i in lease["items"]
        ]  # fmt: skip
        r = api.client.post(
            f"/v1/agent/leases/{lease['lease_id']}/results",
            json={"run_id": "r1", "results": results},
            headers=bearer(token),
        )
        assert r.status_code == 200, r.text
    return arch


def test_validation_page_draws_the_genotype_of_darts_networks_only(api: Api, token: str) -> None:
    measure_space_and_networks(api, token, 3)  # fbnet, a chain space: nothing to draw
    arch = measure_a_darts_network(api, token)
    html = api.client.get("/devices/dev1/validation").text
    rows = re.findall(r'<tr class="network">.*?</tr>', html, re.S)
    darts = [row for row in rows if "darts@8" in row]
    assert len(rows) == 4 and len(darts) == 1
    assert all("<svg" not in row and "<details" not in row for row in rows if row not in darts)
    assert "<summary>genotype</summary>" in darts[0]
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", darts[0], re.S).group(0))
    ops = [e.get("data-op") for e in svg.iter("{http://www.w3.org/2000/svg}line")]
    assert [op for op in ops if op] == [op for op, _ in arch["normal"] + arch["reduce"]]
    assert all("genotype_svg" not in r for r in page_data(html))  # not in the charts' JSON


def test_a_darts_arch_that_cannot_be_drawn_shows_nothing() -> None:
    good = {"space": "darts", "C": 4, "normal": [["skip_connect", 0], ["skip_connect", 1]] * 4}
    good["reduce"] = good["normal"]
    svg = genotype_drawing(SimpleNamespace(space="darts", arch=good))
    assert svg is not None and svg.startswith("<svg")
    for arch in ({**good, "reduce": "x"}, {**good, "normal": None}, [], None, {}):
        assert genotype_drawing(SimpleNamespace(space="darts", arch=arch)) is None
    assert genotype_drawing(SimpleNamespace(space="fbnet", arch=good)) is None


def test_an_imported_device_shows_its_provenance(api: Api) -> None:
    from tests.lut_fixtures import proxyless_mobile_yaml

    body = {
        "file_name": "mobile_trim.yaml",
        "content": proxyless_mobile_yaml(),
        "space": "proxyless-mobile",
        "resolution": 224,
        "classes": 1000,
    }
    r = api.client.post("/v1/devices/pixel1/imports", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    sha = r.json()["sha256"]
    index = api.client.get("/").text
    row = index[index.index('data-device="pixel1"') :]
    assert "imported" in row and "mobile_trim.yaml (proxyless-yaml" in row
    html = api.client.get("/devices/pixel1").text
    assert 'id="provenance"' in html and sha[:12] in html and "last agent contact" not in html
    [table] = page_data(html)
    assert table["counts"]["missing"] == 0 and table["counts"]["flagged"] == 0
    assert "the mean in mobile_trim.yaml" in table["hover"][0][0]
