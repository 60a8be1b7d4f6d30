"""Reference readings through the API: stored once per batch and linked to its
measurements, refused when malformed (nothing stored), reported per run with drifted
batches flagged, and divided out of a predictor's labels, reproducibly."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from latency_service.repository import predictors as predictors_repo
from latency_service.repository.devices import get_device
from profiler.ops import OpSpec
from profiler.reference import PANEL, panel_ops
from profiler.sampling import sample_ops
from tests.latency_service.routes.test_predictors import law
from tests.latency_service.support import ADMIN, Api, bearer, stats

BASE_MS = (0.05, 0.3, 1.5)


def reading(scale: float = 1.0, panel: str = PANEL) -> dict[str, Any]:
    ops = {
        op.key: {"median_ms": ms * scale, "ci_half_width_ms": ms * 0.01, "stable": True}
        for op, ms in zip(panel_ops(), BASE_MS, strict=True)
    }
    return {"panel": panel, "ops": ops}


def post(
    api: Api,
    token: str,
    lease: dict[str, Any],
    run_id: str,
    ref: dict[str, Any] | None,
    ms: Any = lambda key: 1.0,
) -> Any:
    body: dict[str, Any] = {
        "run_id": run_id,
        "results": [
            {"item_id": i["item_id"], "key": i["key"], "stats": stats(ms(i["key"]))}
            for i in lease["items"]
        ],
    }
    if ref is not None:
        body["reference"] = ref
    return api.client.post(
        f"/v1/agent/leases/{lease['lease_id']}/results", json=body, headers=bearer(token)
    )


def test_a_reading_is_stored_once_and_linked_to_its_batch(api: Api, token: str) -> None:
    me = api.client.get("/v1/agent/me", headers=bearer(token)).json()
    assert me["reference_panel"] == PANEL  # agents learn which panel to measure
    api.enqueue("dev1", ops=[op.key for op in sample_ops("mbconv", 6, seed=5)])
    lease = api.lease(token, 4)
    assert post(api, token, lease, "r1", reading()).status_code == 200
    again = post(api, token, lease, "r1", reading())  # a spool replay
    assert again.status_code == 200 and again.json()["duplicates"] == 4
    assert api.count("reference_readings") == 1
    assert api.count("measurements", "reference_id IS NOT NULL") == 4
    rest = api.lease(token, 4)  # an agent without a panel: measurements, no reading
    assert post(api, token, rest, "r1", None).status_code == 200
    assert api.count("measurements", "reference_id IS NULL") == 2
    assert api.count("reference_readings") == 1


def test_a_malformed_reading_is_refused_and_nothing_is_stored(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=[op.key for op in sample_ops("mbconv", 3, seed=5)])
    lease = api.lease(token, 3)
    r = post(api, token, lease, "r1", reading(panel="other-v9"))
    assert r.status_code == 422 and "unknown reference panel" in r.json()["detail"]
    partial = reading()
    partial["ops"].popitem()
    r = post(api, token, lease, "r1", partial)
    assert r.status_code == 422 and "panel_ops" in r.json()["detail"]
    bad = reading()
    next(iter(bad["ops"].values()))["median_ms"] = 0
    assert post(api, token, lease, "r1", bad).status_code == 422
    assert api.count("measurements") == api.count("reference_readings") == 0
    assert api.states("dev1") == {"leased": 3}


def test_drift_is_reported_per_run_and_a_slow_batch_flagged(api: Api, token: str) -> None:
    api.enqueue("dev1", ops=[op.key for op in sample_ops("mbconv", 8, seed=5)])
    for run_id, scale in (("quiet", 1.0), ("quiet", 1.01), ("quiet", 0.99), ("busy", 1.12)):
        assert post(api, token, api.lease(token, 2), run_id, reading(scale)).status_code == 200
    out = api.client.get("/v1/devices/dev1/drift").json()
    assert out["readings"] == 4 and out["flagged"] == 1 and out["tolerance"] == 0.05
    runs = {r["run_id"]: r for r in out["runs"]}
    assert runs["quiet"]["readings"] == 3 and runs["quiet"]["flagged"] == 0
    assert runs["quiet"]["measurements"] == 6
    # baseline: the median of each panel block (scales 0.99, 1.0, 1.01, 1.12 -> 1.005)
    assert np.isclose(runs["busy"]["median_factor"], 1.12 / 1.005)
    assert runs["busy"]["flagged"] == 1
    assert api.client.get("/v1/devices/ghost/drift").status_code == 404


def test_training_divides_out_a_slow_run_and_rebuilds_the_same(api: Api, token: str) -> None:
    """40 ops measured by a known law; 10 of them in a run 25% slow, as its panel shows
    (each run's factor is the median over its batches).
    The predictor recovers the law, and a later reading (which moves the baseline) does
    not change what a rebuild from storage gives."""
    keys = [op.key for op in sample_ops("mbconv", 40, seed=1)]
    api.enqueue("dev1", ops=keys)
    for n, run_id, scale in ((10, "q1", 1.0), (10, "q2", 1.0), (10, "q3", 1.0), (10, "s", 1.25)):
        lease = api.lease(token, n)
        r = post(api, token, lease, run_id, reading(scale), lambda k, f=scale: law(k) * f)
        assert r.status_code == 200
    r = api.client.post("/v1/devices/dev1/predictors:train", json={}, headers=ADMIN)
    [trained] = r.json()["trained"]
    assert trained["drift"]["normalised"] == 40 and trained["drift"]["factor_p95"] == 1.25
    heldout = api.client.get("/v1/devices/dev1/predictors", params={"heldout": True}).json()
    labels = sorted(measured for measured, _ in heldout[0]["heldout"])
    assert np.allclose(labels, sorted(law(k) for k in keys))  # the slow run divided out
    unseen = [OpSpec.from_key(op.key) for op in sample_ops("mbconv", 6, seed=77)]
    before = rebuilt(api, unseen)
    # three more batches of the slow run move its median factor (1.25 -> 1.3) and the
    # baseline (1.0 -> 1.25); the predictor keeps the baseline and the newest reading it
    # used, so a rebuild divides by the same factors
    api.enqueue("dev1", ops=[op.key for op in sample_ops("mbconv", 3, seed=99)])
    for _ in range(3):
        assert post(api, token, api.lease(token, 1), "s", reading(1.3)).status_code == 200
    moved = api.client.get("/v1/devices/dev1/drift").json()["baseline_ms"]
    assert np.isclose(moved[panel_ops()[0].key], BASE_MS[0] * 1.25)
    assert np.array_equal(before, rebuilt(api, unseen))


def test_a_batch_without_a_reading_takes_its_runs_factor(api: Api, token: str) -> None:
    """Agents may read the panel with every Nth batch only: a batch without a reading is
    divided by its run's factor all the same, and a run without readings stays as is."""
    keys = [op.key for op in sample_ops("mbconv", 40, seed=2)]
    api.enqueue("dev1", ops=keys)
    for n, run_id, ref, scale in (
        (10, "q1", reading(), 1.0),  # two quick runs keep the baseline at 1
        (5, "q2", reading(), 1.0),
        (5, "s", reading(1.25), 1.25),
        (10, "s", None, 1.25),  # the same slow run, between its readings
        (10, "other", None, 1.0),  # a run that read no panel at all
    ):
        lease = api.lease(token, n)
        assert (
            post(api, token, lease, run_id, ref, lambda k, f=scale: law(k) * f).status_code == 200
        )
    r = api.client.post("/v1/devices/dev1/predictors:train", json={}, headers=ADMIN)
    [trained] = r.json()["trained"]
    assert trained["drift"]["by"] == "batch" and trained["drift"]["normalised"] == 30
    heldout = api.client.get("/v1/devices/dev1/predictors", params={"heldout": True}).json()
    labels = sorted(measured for measured, _ in heldout[0]["heldout"])
    assert np.allclose(labels, sorted(law(k) for k in keys))
    # a record from before every-Nth-batch readings rebuilds as it was trained: only
    # batches with a reading of their own were divided
    old = {k: v for k, v in trained["drift"].items() if k != "by"}
    with Session(api.app.state.engine) as s:
        device = get_device(s, "dev1")
        rows = predictors_repo.training_rows(s, device, "mbconv")
        ops, y, _ = predictors_repo.labels(s, device, 1, rows, old, rebuild=True)
    assert np.sum(~np.isclose(y, [law(k.key) for k in ops.specs])) == 10


def test_a_run_that_drifts_is_divided_batch_by_batch(api: Api, token: str) -> None:
    """Inside one run the machine slows down by 20% for two of four batches, and the
    panel shows it: far more spread than the panel's own noise, so each batch keeps its
    own factor (a run median would leave half the labels 10% off)."""
    keys = [op.key for op in sample_ops("mbconv", 40, seed=3)]
    api.enqueue("dev1", ops=keys)
    for run_id, scale in (("q1", 1.0), ("q2", 1.0), ("d", 1.0), ("d", 1.2), ("d", 1.0)):
        lease = api.lease(token, 8)
        r = post(api, token, lease, run_id, reading(scale), lambda k, f=scale: law(k) * f)
        assert r.status_code == 200
    r = api.client.post("/v1/devices/dev1/predictors:train", json={}, headers=ADMIN)
    assert r.json()["trained"][0]["drift"]["by"] == "batch"
    heldout = api.client.get("/v1/devices/dev1/predictors", params={"heldout": True}).json()
    labels = sorted(measured for measured, _ in heldout[0]["heldout"])
    assert np.allclose(labels, sorted(law(k) for k in keys), rtol=0.01)


def rebuilt(api: Api, specs: list[OpSpec]) -> np.ndarray:
    """Predictions of dev1's mbconv predictor rebuilt from storage."""
    with Session(api.app.state.engine) as s:
        device = get_device(s, "dev1")
        row = predictors_repo.latest(s, device)["mbconv"]
        return np.asarray(predictors_repo.rebuild(s, device, row).predict(specs))


def test_the_device_page_shows_drift_per_run(api: Api, token: str) -> None:
    empty = api.client.get("/devices/dev1").text
    assert "No reference readings yet" in empty and "drift-run" not in empty
    api.enqueue("dev1", ops=[op.key for op in sample_ops("mbconv", 6, seed=5)])
    for run_id, scale in (("quiet-run", 1.0), ("quiet-run", 1.0), ("busy-run", 1.2)):
        assert post(api, token, api.lease(token, 2), run_id, reading(scale)).status_code == 200
    html = api.client.get("/devices/dev1").text
    rows = re.findall(r'<tr class="drift-run( drifted)?"><td><code>([^<]+)</code>', html)
    assert sorted(rows) == [("", "quiet-run"), (" drifted", "busy-run")]
    assert "1.200" in html  # the busy run's factor against the quiet baseline
