"""The dashboard in headless Chromium, over a service populated by a real agent run.

Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); skipped, with
that reason, only where they are not installed. Screenshots of every page are written
to test-artifacts/dashboard/ (or $HWLAT_SCREENSHOTS) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from latency_service.client import HwlatClient
from profiler.sampling import sample_ops
from searchers.spaces import create_space
from tests.devices.service_harness import ADMIN, QUICK, Service
from tests.latency_service.support import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium is not installed: `sudo apt-get install chromium chromium-driver` "
    "(.ci/run installs them)",
)
SPACE = {"space": "spos-shufflenet", "resolution": 32}  # 34 distinct ops: a small space
PREDICTED_WIDTH = 0.5  # queued, never measured: its cells come from the predictor
NETWORKS = 6
SHOTS = Path(os.environ.get("HWLAT_SCREENSHOTS", ROOT / "test-artifacts" / "dashboard"))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """`hwlat serve` on SQLite; an `hwlat agent --once` measures a small space and a
    few networks; predictors trained; a wider variant of the space queued, unmeasured."""
    home = tmp_path_factory.mktemp("dashboard")
    svc = Service(home, f"sqlite:///{home / 'hwlat.db'}").start()
    try:
        with HwlatClient(svc.url, admin_token=ADMIN, timeout=120) as c:
            token = c.create_device("cpu", "ort-cpu").token
            c.enqueue_space("cpu", SPACE["space"], SPACE["resolution"], classes=10)
            space = create_space(SPACE["space"], resolution=SPACE["resolution"], classes=10)
            nets = [
                {**space.params(), "arch": space.arch_to_json(space.random_arch(seed))}
                for seed in range(NETWORKS)
            ]
            c.enqueue_networks("cpu", nets)
            # the space has 24 shuffle blocks; a predictor needs 30 of a kind
            c.enqueue_ops("cpu", [op.key for op in sample_ops("shuffle", 10, seed=3)])
            agent = [sys.executable, "-m", "hwlat.cli", "agent", "--server", svc.url]
            env = {**os.environ, "XDG_DATA_HOME": str(home), "HWLAT_CACHE_DIR": str(home / "c")}
            subprocess.run(
                [*agent, "--token", token, "--threads", "1", "--once", *QUICK],
                env=env,
                check=True,
                timeout=600,
            )
            assert c.train("cpu").trained, "the agent's measurements should train a predictor"
            c.enqueue_space("cpu", SPACE["space"], SPACE["resolution"], PREDICTED_WIDTH, classes=10)
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",  # the machine has no internet: no noise
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def visit(browser: Any, url: str, ready: str, shot: str) -> None:
    """Load a page, wait until `ready` (JS expression) holds, check the console has no
    errors, and write a full-page screenshot."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(f"return !!({ready});"))
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, f"console errors on {url}: {errors}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(max(height + 150, 600), 6000))  # + window frame
    browser.save_screenshot(str(SHOTS / f"{shot}.png"))
    browser.set_window_size(1400, 1000)


def js(browser: Any, script: str) -> Any:
    return browser.execute_script(script)


def test_devices_page(service: Service, browser: Any) -> None:
    visit(browser, service.url + "/", "document.querySelector('tr.device')", "devices")
    assert js(browser, "return document.querySelectorAll('tr.device').length") == 1
    text = js(browser, "return document.querySelector('tr.device').innerText")
    assert "cpu" in text and "ort-cpu" in text and "spos-shufflenet@32" in text


def lut_cells(service: Service, width: float) -> tuple[int, int, int]:
    """(legal cells, measured, predicted) of the table as the API gives it."""
    params = {**SPACE, "width": width, "classes": 10}
    lut = httpx.get(f"{service.url}/v1/devices/cpu/lut", params=params, timeout=60).json()
    cells = [cell for layer in lut["layers"] for cell in layer["cells"].values() if cell]
    sources = [c["source"] for c in cells]
    return len(cells), sources.count("measured"), sources.count("predicted")


def test_device_page_heatmaps(service: Service, browser: Any) -> None:
    ready = "document.querySelectorAll('.heatmap .heatmaplayer image').length == 2"
    visit(browser, service.url + "/devices/cpu", ready, "device")
    for i, width in enumerate((1.0, PREDICTED_WIDTH)):
        legal, measured, predicted = lut_cells(service, width)
        plot = f"document.getElementById('heatmap-{i}')"
        z = js(browser, f"return {plot}.data[0].z")
        assert sum(v is not None for row in z for v in row) == measured + predicted
        states = js(browser, f"return {plot}.data[0].text.flat().length")
        assert states == len(z) * len(z[0])
        drawn = js(browser, f"return {plot}.data.slice(1).map(t => [t.meta.state, t.x.length])")
        marked = dict(drawn)
        assert marked["predicted"] == predicted  # one visible marker per predicted cell
        assert marked["missing"] == legal - measured - predicted
        assert marked["flagged"] <= measured
        assert int(js(browser, f"return {plot}.closest('section').dataset.legal")) == legal
        points = js(browser, f"return {plot}.querySelectorAll('.scatterlayer .point').length")
        assert points == sum(marked.values())
    legend = js(
        browser, "return [...document.querySelectorAll('.legendtext')].map(e => e.textContent)"
    )
    assert "predicted" in legend
    assert predicted_width_is_predicted(service)


def predicted_width_is_predicted(service: Service) -> bool:
    _, measured, predicted = lut_cells(service, PREDICTED_WIDTH)
    return measured == 0 and predicted > 0


def test_predictor_page_scatter(service: Service, browser: Any) -> None:
    ready = "document.querySelector('.scatter .scatterlayer .point')"
    visit(browser, service.url + "/devices/cpu/predictors", ready, "predictors")
    n = int(js(browser, "return document.getElementById('scatter-0').dataset.points"))
    drawn = js(
        browser, "return document.querySelectorAll('#scatter-0 .scatterlayer .point').length"
    )
    assert drawn == n > 0


def test_validation_page(service: Service, browser: Any) -> None:
    ready = "document.querySelector('#validation-scatter .scatterlayer .point')"
    visit(browser, service.url + "/devices/cpu/validation", ready, "validation")
    rows = js(browser, "return document.querySelectorAll('#figures tbody tr').length")
    assert rows == 2  # raw and calibrated
    drawn = js(browser, "return document.querySelectorAll('#validation-scatter .point').length")
    assert drawn == 2 * NETWORKS
