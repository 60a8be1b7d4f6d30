"""The between-session term in lookups: a measured op's interval is its own CI widened by
its kind's retests (20 pairs or more), else by the reference panel's spread between
batches, else left as it is; the LUT says the same; the repeatability report shows how
the reported intervals cover the retests; and an upload that moves the term merges into
another worker's cached snapshot without a whole reload (the worker that took the
upload drops its own snapshot)."""

from __future__ import annotations

import copy
import zlib
from itertools import combinations
from typing import Any

import pytest

from latency_service import cache as cache_module
from latency_service.cache import ReadCache
from latency_service.repository.devices import get_device
from latency_service.repository.uncertainty import (
    PANEL_WINDOW,
    Between,
    assess,
    interval,
    panel_pairs,
)
from profiler.uncertainty import Pair, calibrate, covered, total_half_width
from tests.latency_service.repository.test_retest import measure_all, retest
from tests.latency_service.routes.test_drift import post, reading
from tests.latency_service.support import FBNET32, Api, MakeApi
from tests.latency_service.test_snapshot import load

CONV = "conv|cin=3,cout=16,g=1,k=3,s=2|1x3x32x32|float32"  # FBNET32's stem


@pytest.fixture
def reader(make_api: MakeApi, api: Api) -> Api:
    """A second worker on the same database: it reads, `api` takes the uploads."""
    return make_api()


def lookup(api: Api, key: str) -> dict[str, Any]:
    r = api.client.get("/v1/devices/dev1/latency", params={"op": key})
    assert r.status_code == 200, r.text
    return dict(r.json())


def lut_cells(api: Api) -> dict[str, dict[str, Any]]:
    r = api.client.get("/v1/devices/dev1/lut", params=FBNET32)
    assert r.status_code == 200, r.text
    lut = r.json()
    cells = [c for layer in lut["layers"] for c in layer["cells"].values() if c is not None]
    return {c["key"]: c for c in cells + lut["fixed"]}


def repeat_of(api: Api, kind: str = "mbconv") -> dict[str, Any]:
    r = api.client.get("/v1/devices/dev1/repeatability")
    assert r.status_code == 200, r.text
    return dict(r.json()["kinds"][kind])


def batches(api: Api, token: str, scales: list[float], n: int = 20) -> list[str]:
    """Batches of `n` queued ops (1 ms each), each with a panel reading at its scale."""
    keys = []
    for scale in scales:
        lease = api.lease(token, n)
        assert post(api, token, lease, "r1", reading(scale)).status_code == 200
        keys += [i["key"] for i in lease["items"]]
    return keys


def panel_sigma(scales: list[float]) -> float | None:
    """The sigma of readings at these scales (reading(): 1% CIs at the base medians)."""
    found = [reading(s)["ops"] for s in scales]
    pairs = [
        Pair(
            a[k]["median_ms"], b[k]["median_ms"], a[k]["ci_half_width_ms"], b[k]["ci_half_width_ms"]
        )
        for a, b in combinations(found, 2)
        for k in a
    ]
    return calibrate(pairs, "panel").sigma


def ratio(key: str) -> float:
    """A retest's ratio to the first measurement, -5% .. +5% by key (1% CIs: most of
    these differences lie outside the two CIs)."""
    return 1 + 0.01 * (zlib.crc32(key.encode()) % 11 - 5)


def reloads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the snapshots the read cache loads whole from now on."""
    whole: list[str] = []
    real = cache_module.whole

    def counted(s: Any, name: str, *args: Any) -> Any:
        whole.append(name)
        return real(s, name, *args)

    monkeypatch.setattr(cache_module, "whole", counted)
    return whole


def check_reported(got: dict[str, Any], sigma: float | None, basis: str) -> None:
    within = got["within_ci_half_width_ms"]
    assert within == pytest.approx(0.01 * got["median_ms"])  # as stored (support.stats)
    assert got["ci_basis"] == basis
    total = total_half_width(got["median_ms"], within, sigma)
    assert got["ci_half_width_ms"] == pytest.approx(total, rel=1e-12)


def test_a_kind_with_20_retests_gets_their_sigma(
    api: Api, reader: Api, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.enqueue("dev1", **FBNET32)
    measure_all(api, token, "r1", 1.0, lambda key: 1.0)
    whole = reloads(monkeypatch)
    before = lookup(reader, CONV)  # a snapshot in the reader's cache
    assert retest(api, n=30).json()["queued"] == 30
    retested = measure_all(api, token, "r2", 1.0, ratio)
    rep = repeat_of(reader)
    assert rep["pairs"] == 30 and rep["ci_basis"] == "retests" and rep["nominal"] == 0.95
    assert rep["sigma"] > 0.01 and rep["ci_coverage"] < 0.6
    assert rep["reported_ci_coverage"] >= 0.9 > rep["ci_coverage"]
    cells = lut_cells(reader)
    others = [k for k in cells if k.startswith("mbconv|") and k not in retested]
    for key in [*retested[:3], *others[:3]]:  # new rows, and old ones the merge rewrote
        got = lookup(reader, key)
        check_reported(got, rep["sigma"], "retests")
        assert got["ci_half_width_ms"] > 2 * got["within_ci_half_width_ms"]
        assert got["repeat_rel_error"] == rep["rmspe"]
        fields = ("ci_half_width_ms", "within_ci_half_width_ms", "ci_basis", "repeat_rel_error")
        assert {f: cells[key][f] for f in fields} == {f: got[f] for f in fields}
    # no retests of conv, and two panel readings make no sigma: the conv op's own CI
    assert lookup(reader, CONV) == before and before["ci_basis"] == "within"
    check_reported(before, None, "within")
    assert cells[CONV]["ci_half_width_ms"] == before["within_ci_half_width_ms"]
    assert whole == ["dev1"]  # the retests merged into the cached snapshot
    assert reader.app.state.cache._snaps["dev1"].latency == load(api).latency
    with api.app.state.sessions() as s:
        device = get_device(s, "dev1")
        found, _ = assess(s, device)
        raw = {kind: [p.raw for p in pairs] for kind, pairs in found.items()}
        assert list(raw) == ["mbconv"] and len(raw["mbconv"]) == 30
        assert sorted(p.b_ms / p.a_ms for p in raw["mbconv"]) == sorted(map(ratio, retested))


def test_too_few_retests_take_the_panels_sigma(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    scales = [1.0, 1.04, 0.97, 1.06, 0.95, 1.02]
    batches(api, token, scales)
    assert retest(api, n=5).json()["queued"] == 5
    retested = measure_all(api, token, "r2", 1.0, lambda key: 1.03)
    sigma = panel_sigma([*scales, 1.0])
    assert sigma is not None and sigma > 0.01
    for key in [*retested, CONV]:  # mbconv (5 retest pairs) and conv alike
        check_reported(lookup(api, key), sigma, "panel")
    cells = lut_cells(api)
    assert cells[CONV]["ci_basis"] == "panel"
    assert cells[CONV]["ci_half_width_ms"] == lookup(api, CONV)["ci_half_width_ms"]
    rep = repeat_of(api)
    assert (rep["pairs"], rep["ci_basis"], rep["sigma"]) == (5, "panel", sigma)
    pair = Pair(1.0, 1.03, 0.01, 0.0103)  # every retest pair, raw
    assert rep["ci_coverage"] == 0.0 and not covered(pair, None)
    assert rep["reported_ci_coverage"] == float(covered(pair, sigma)) == 1.0


def test_the_panel_pairs_its_newest_readings(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    batches(api, token, [1.5, 1.5] + [1.0 + i / 1000 for i in range(PANEL_WINDOW)], n=2)
    with api.app.state.sessions() as s:
        pairs = panel_pairs(s, get_device(s, "dev1"))
    assert len(pairs) == 3 * PANEL_WINDOW * (PANEL_WINDOW - 1) // 2  # per block, every pair
    assert all(1.0 < p.b_ms / p.a_ms < 1.05 for p in pairs)  # newer b; the slow two left out


def test_neither_leaves_the_measurements_own_ci(api: Api, token: str) -> None:
    api.enqueue("dev1", **FBNET32)
    keys = measure_all(api, token, "r1", None, lambda key: 2.0)  # no panel, no retests
    cells = lut_cells(api)
    for key in keys[:10]:
        got = lookup(api, key)
        check_reported(got, None, "within")
        assert got["ci_half_width_ms"] == got["within_ci_half_width_ms"] == 0.02
        assert cells[key]["ci_basis"] == "within" and cells[key]["ci_half_width_ms"] == 0.02


def test_imported_values_and_missing_cis_are_never_widened() -> None:
    panel = calibrate([Pair(1.0, 1.0 + i / 100, 0.01, 0.01) for i in range(30)], "panel")
    between = Between({}, panel)
    assert panel.sigma is not None and between.for_kind("conv") == (panel.sigma, "panel")
    assert interval(between, CONV, 2.0, 0.02, imported=False)[0] > 0.02  # type: ignore[operator]
    assert interval(between, CONV, 2.0, 0.02, imported=True) == (0.02, "within")
    assert interval(between, CONV, 2.0, None, imported=False) == (None, None)
    assert interval(Between(), CONV, 2.0, 0.02, imported=False) == (0.02, "within")


def test_an_upload_that_moves_the_panel_merges_without_a_reload(
    api: Api, reader: Api, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.enqueue("dev1", **FBNET32)
    scales = [1.0, 1.01, 0.99, 1.02, 0.98]
    first = batches(api, token, scales)  # 100 of the 104 ops
    whole = reloads(monkeypatch)
    before = lookup(reader, first[0])
    check_reported(before, panel_sigma(scales), "panel")
    cache: ReadCache = reader.app.state.cache
    old = cache._snaps["dev1"]
    held = copy.deepcopy(old.latency)
    batches(api, token, [1.3])  # the last 4 ops, in a batch 30% slow
    after = lookup(reader, first[0])  # the fast path: the op's JSON encoded again
    check_reported(after, panel_sigma([*scales, 1.3]), "panel")
    assert after["ci_half_width_ms"] > 2 * before["ci_half_width_ms"]
    assert whole == ["dev1"]  # loaded once, merged since
    assert old.latency == held  # reads holding the old snapshot see it unchanged
    assert cache._snaps["dev1"].latency == load(api).latency  # the same as a whole load
