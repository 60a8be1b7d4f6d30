"""Property-based API tests from the app's own OpenAPI schema (schemathesis): whatever a
client sends, valid or not, no operation answers 5xx. SQLite only, bounded examples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from latency_service.config import ServiceSettings
from latency_service.main import create_app
from tests.latency_service.support import ADMIN, ADMIN_TOKEN, FBNET32, Api, bearer, upgrade


class Service:
    def __init__(self, root: Path):
        url = f"sqlite:///{root / 'hwlat.db'}"
        upgrade(url)
        self.api = Api(create_app(ServiceSettings(database_url=url, admin_token=ADMIN_TOKEN)))
        self.token = self.api.make_device("dev1")
        self.api.enqueue("dev1", **FBNET32)
        self.measured = self.api.measure(self.token, 8)
        self.lease_id = self.api.lease(self.token, 4)["lease_id"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    svc = Service(tmp_path_factory.mktemp("schemathesis"))
    yield svc
    svc.api.client.close()
    svc.api.app.state.engine.dispose()


# The schema does not depend on the data, so it is read at import from an app whose
# database is never opened; the requests go to the module's seeded app (app=...).
# (schemathesis.pytest.from_fixture would be the lazy way, but schemathesis 4.32.5 reads
# pytest's private Function._nodeid, which pytest 9.2 no longer has.)
SCHEMA_APP = create_app(ServiceSettings(database_url="sqlite://", admin_token=ADMIN_TOKEN))
schema = schemathesis.openapi.from_asgi("/openapi.json", SCHEMA_APP)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case, service: Service) -> None:
    # Aim at the seeded device and lease half of the time, so the generated bodies and
    # queries reach the handlers instead of stopping at "no such device".
    params = case.path_parameters or {}
    if "name" in params and len(str(params["name"])) % 2 == 0:
        params["name"] = "dev1"
    if "lease_id" in params and len(str(params["lease_id"])) % 2 == 0:
        params["lease_id"] = service.lease_id
    agent = case.path.startswith("/v1/agent")
    headers = bearer(service.token) if agent else ADMIN
    case.call_and_validate(headers=headers, checks=[not_a_server_error], app=service.api.app)


def test_schema_lists_every_route() -> None:
    paths = set(schema.raw_schema["paths"])
    assert {
        "/healthz",
        "/v1/devices",
        "/v1/devices/{name}",
        "/v1/devices/{name}/jobs",
        "/v1/devices/{name}/latency",
        "/v1/devices/{name}/latency:batch",
        "/v1/devices/{name}/lut",
        "/v1/agent/lease",
        "/v1/agent/leases/{lease_id}/results",
    } <= paths
