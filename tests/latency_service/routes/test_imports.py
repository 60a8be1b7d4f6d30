"""Imported devices over HTTP: a foreign table becomes a device of its own with its
provenance, is served like measurements (with the file named), is never leased to an
agent, and exports back to its format unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from latency_service.client import HwlatClient
from latency_service.repository import devices as devices_repo
from latency_service.repository import imports as imports_repo
from latency_service.schemas import IMPORT_MB
from profiler.lutformats import create_format, list_formats
from tests.latency_service.lutfiles import SPACE, body, table_text
from tests.latency_service.support import ADMIN, ADMIN_TOKEN, Api, bearer, stats

TABLES = ("devices", "measurements", "lut_imports", "space_targets", "ops")


def post(api: Api, data: dict[str, Any], device: str = "phone") -> Any:
    return api.client.post(f"/v1/devices/{device}/imports", json=data, headers=ADMIN)


def imported(api: Api, text: str | None = None, device: str = "phone", **kw: Any) -> Any:
    r = post(api, body(text or table_text(), **kw), device)
    assert r.status_code == 201, r.text
    return r.json()


def lut(api: Api, device: str = "phone", **params: Any) -> Any:
    r = api.client.get(f"/v1/devices/{device}/lut", params={**SPACE, **params})
    assert r.status_code == 200, r.text
    return r


def rows(api: Api) -> dict[str, int]:
    return {t: api.count(t) for t in TABLES}


def test_import_creates_an_imported_device_with_provenance(api: Api) -> None:
    out = imported(api)
    assert out["created_device"] and not out["noop"]
    assert (out["device"], out["revision"], out["format"]) == ("phone", 1, "proxyless-yaml")
    assert out["mapped"] == 74 and out["unfilled"] == [] and out["unmapped"] == []
    dev = api.device("phone")
    assert (dev["source"], dev["runtime"], dev["measurements"]) == ("imported", "imported", 74)
    [prov] = dev["provenance"]
    assert (prov["file_name"], prov["sha256"], prov["format"]) == (
        "mobile.yaml",
        out["sha256"],
        "proxyless-yaml",
    )
    assert (prov["space"], prov["resolution"], prov["mapped"], prov["unfilled"]) == (
        "proxyless-mobile",
        224,
        74,
        0,
    )
    assert dev["coverage"][0]["fraction"] == 1.0
    assert api.device("phone")["work"] == {}
    listed = api.client.get("/v1/devices/phone/imports").json()
    assert [r["sha256"] for r in listed] == [out["sha256"]] and listed[0]["unfilled_ops"] == []


def test_cells_carry_the_files_spread_as_their_error(api: Api) -> None:
    imported(api)
    table = lut(api).json()
    cell = table["layers"][0]["cells"]["3x3_MBConv3"]
    assert cell["source"] == "measured"  # measured, on the file's machine
    assert cell["imported"]["file"] == "mobile.yaml" and cell["imported"]["statistic"] == "mean"
    assert cell["ci_half_width_ms"] == pytest.approx(1.96 * 0.1 / 10)  # std 0.1, 100 runs
    one = api.client.get("/v1/devices/phone/latency", params={"op": cell["key"]}).json()
    assert one["std_ms"] == pytest.approx(0.1) and one["samples"] == 100
    assert one["p10_ms"] is None and one["p90_ms"] is None and one["stable"] is True
    assert one["imported"]["format"] == "proxyless-yaml"


def test_the_same_file_again_is_a_noop(api: Api) -> None:
    first = imported(api)
    before = rows(api)
    again = imported(api)
    assert again["noop"] and not again["created_device"] and again["revision"] == 1
    assert again["sha256"] == first["sha256"] and rows(api) == before


def test_another_file_for_the_same_space_is_a_new_revision(api: Api) -> None:
    imported(api, table_text(ms=0.5))
    key = lut(api).json()["fixed"][0]["key"]
    out = imported(api, table_text(ms=2.0), name="newer.yaml")
    assert out["revision"] == 2 and not out["noop"]
    assert lut(api).json()["fixed"][0]["ms"] == 2.0  # the old numbers are not served
    got = api.client.get("/v1/devices/phone/latency", params={"op": key}).json()
    assert got["median_ms"] == 2.0 and got["imported"]["file"] == "newer.yaml"
    [prov] = api.device("phone")["provenance"]
    assert prov["file_name"] == "newer.yaml" and prov["carried_from"] is None
    assert len(api.client.get("/v1/devices/phone/imports").json()) == 2


def test_a_second_resolution_is_carried_into_the_next_revision(api: Api) -> None:
    imported(api, table_text("ofa-yaml"), fmt="ofa-yaml", name="224_lookup_table.yaml")
    ofa192 = table_text("ofa-yaml", ms=0.3, resolution=192)
    out = imported(api, ofa192, fmt="ofa-yaml", name="192_lookup_table.yaml", resolution=192)
    assert out["revision"] == 2
    provenance = {p["resolution"]: p for p in api.device("phone")["provenance"]}
    assert set(provenance) == {192, 224}
    assert provenance[224]["carried_from"] is not None and provenance[192]["carried_from"] is None
    assert lut(api).json()["coverage"]["fraction"] == 1.0  # 224 still served, revision 2
    assert lut(api, resolution=192).json()["fixed"][0]["ms"] == 0.3


def test_malformed_or_useless_files_write_nothing(api: Api) -> None:
    imported(api, device="other")  # something to leave alone
    before = rows(api)
    bad = post(api, body('"Conv-input:224x224x3-output:112x112x32":\n  mean: -1\n'))
    assert bad.status_code == 422 and "mobile.yaml" in bad.json()["detail"]
    unknown = post(api, body("hello: [1, 2", fmt=None))
    assert unknown.status_code == 422 and "cannot tell its format" in unknown.json()["detail"]
    wrong = post(api, body(table_text(), resolution=160))  # a 224 table, space at 160
    assert wrong.status_code == 422
    assert "is a table for resolution 224, not 160" in wrong.json()["detail"]
    useless = post(api, body('"Conv_2-input:1x1x960-output:1x1x1280":\n  mean: 1.0\n'))
    assert useless.status_code == 422 and "fills an op" in useless.json()["detail"]
    assert rows(api) == before


def test_an_error_half_way_writes_nothing(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any) -> None:
        raise imports_repo.Invalid("boom after the measurements were flushed")

    monkeypatch.setattr(imports_repo, "add_space_target", fail)
    before = rows(api)
    assert post(api, body(table_text())).status_code == 422
    assert rows(api) == before


def test_too_large_a_file_is_refused_clearly(api: Api) -> None:
    big = "#" * ((IMPORT_MB << 20) + 1)
    r = post(api, body(big))
    assert r.status_code == 422 and "far larger than any latency table" in r.text
    huge = post(api, body(big * 3))
    assert huge.status_code == 413 and "at most 8 MB" in huge.json()["detail"]
    assert api.count("devices") == 0


def test_a_measured_device_takes_no_file(api: Api, token: str) -> None:
    r = post(api, body(table_text()), device="dev1")
    assert r.status_code == 409 and "under another name" in r.json()["detail"]
    assert api.count("lut_imports") == 0


def _agent_token(api: Api, device: str) -> str:
    """A token the service would never give an imported device (to test the agent side)."""
    with api.app.state.sessions() as s:
        token = devices_repo.add_token(s, devices_repo.get_device(s, device))
        s.commit()
    return token


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("jobs", {**SPACE}),
        ("jobs", {"ops": ["conv|cin=8,cout=8,g=1,k=3,s=1|1x8x8x8|float32"]}),
        ("jobs:refine", {"kind": "mbconv", "n": 5}),
        ("jobs:remeasure", {}),
        ("jobs:retest", {"kind": "mbconv", "n": 5}),
        ("tokens", None),
    ],
)
def test_an_imported_device_takes_no_work_and_no_tokens(
    api: Api, path: str, data: dict[str, Any] | None
) -> None:
    imported(api)
    r = api.client.post(f"/v1/devices/phone/{path}", json=data, headers=ADMIN)
    assert r.status_code == 409, r.text
    assert "imported from mobile.yaml" in r.json()["detail"] and "hwlat devices add" in r.text
    assert api.count("work_items") == 0 and api.count("agent_tokens") == 0


def test_no_agent_may_measure_an_imported_device(api: Api) -> None:
    imported(api)
    token = _agent_token(api, "phone")
    auth = bearer(token)
    hello = {"fingerprint": {}, "fingerprint_id": "abcdef12", "runtime": "imported"}
    upload = {"run_id": "r", "results": [{"item_id": 1, "stats": stats()}], "errors": []}
    for path, data in (
        ("/v1/agent/lease", {"max_items": 4}),
        ("/v1/agent/hello", hello),
        ("/v1/agent/leases/x/results", upload),
    ):
        r = api.client.post(path, json=data, headers=auth)
        assert r.status_code == 409, (path, r.text)
        assert "imported from mobile.yaml" in r.json()["detail"]
    assert api.count("measurements", "run_id = 'r'") == 0


@pytest.mark.parametrize("fmt", ["proxyless-yaml", "ofa-yaml"])
def test_an_import_exports_back_to_the_same_entries(api: Api, fmt: str) -> None:
    text = table_text(fmt)
    imported(api, text, fmt=fmt)
    exported = lut(api, format=fmt)
    assert exported.text.startswith("# hwlat LUT: device phone rev 1")
    f = create_format(fmt)
    assert f.parse(exported.text) == f.parse(text)


def test_every_format_exports_and_unknown_ones_are_422(api: Api) -> None:
    imported(api)
    for fmt in ("json", "csv", *list_formats()):
        assert lut(api, format=fmt).text
    r = api.client.get("/v1/devices/phone/lut", params={**SPACE, "format": "xml"})
    assert r.status_code == 422


def test_the_client_imports_lists_and_exports(api: Api) -> None:
    transport = api.client._transport  # the TestClient's in-process transport
    c = HwlatClient("http://testserver", admin_token=ADMIN_TOKEN, transport=transport)
    text = table_text().encode()
    out = c.import_lut("phone", text, "mobile.yaml", None, "proxyless-mobile", 224, classes=1000)
    assert out.created_device and out.format == "proxyless-yaml" and out.mapped == 74
    assert [r.file_name for r in c.imports("phone")] == ["mobile.yaml"]
    ofa = c.lut_text("phone", "proxyless-mobile", "ofa-yaml", 224, classes=1000)
    assert "-se:0-hs:0" in ofa and c.get_device("phone").source == "imported"
