"""The HTTP client's retry policy, on a scripted transport (no server needed)."""

from __future__ import annotations

import httpx
import pytest

from latency_service.client import ClientError, HwlatClient, ServiceUnavailable


def scripted(*answers: int | Exception, headers: dict[str, str] | None = None):
    """A transport answering each request with the next status (or raising)."""
    calls: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        body = {"status": "ok", "database": "sqlite"} if answer == 200 else {"detail": "nope"}
        return httpx.Response(answer, json=body, headers=headers or {})

    return httpx.MockTransport(handler), calls


def make(transport: httpx.MockTransport, sleeps: list[float], retries: int = 3) -> HwlatClient:
    return HwlatClient(
        "http://svc", admin_token="adm", transport=transport, retries=retries, sleep=sleeps.append
    )


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_retries_transient_statuses_then_succeeds(status: int) -> None:
    transport, calls = scripted(status, status, 200)
    sleeps: list[float] = []
    assert make(transport, sleeps).health()["status"] == "ok"
    assert len(calls) == 3 and len(sleeps) == 2
    assert all(0 <= s <= 30 for s in sleeps)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_does_not_retry_other_client_errors(status: int) -> None:
    transport, calls = scripted(status)
    with pytest.raises(ClientError, match=rf"HTTP {status}: nope") as info:
        make(transport, []).health()
    assert info.value.status == status and len(calls) == 1


def test_honours_retry_after() -> None:
    transport, _ = scripted(503, 200, headers={"Retry-After": "7"})
    sleeps: list[float] = []
    make(transport, sleeps).health()
    assert sleeps == [7.0]


def test_network_errors_are_retried_a_bounded_number_of_times() -> None:
    transport, calls = scripted(*[httpx.ConnectError("refused")] * 3)
    sleeps: list[float] = []
    with pytest.raises(ServiceUnavailable, match="unreachable after 3 tries"):
        make(transport, sleeps, retries=2).health()
    assert len(calls) == 3 and len(sleeps) == 2


def test_persistent_5xx_ends_as_service_unavailable() -> None:
    transport, calls = scripted(503, 503, 503)
    with pytest.raises(ServiceUnavailable, match="HTTP 503"):
        make(transport, [], retries=2).health()
    assert len(calls) == 3


def test_backoff_grows_but_stays_capped_and_jittered() -> None:
    client = HwlatClient("http://svc", backoff_s=0.5, max_backoff_s=4.0)
    delays = [client._delay(attempt, None) for attempt in range(12) for _ in range(20)]
    assert max(delays) <= 4.0 and min(delays) >= 0
    assert len({round(d, 6) for d in delays}) > 100  # jittered, not a fixed ladder


def test_tokens_go_in_the_authorization_header() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"lease_id": None, "expires_at": None, "items": []})

    c = HwlatClient(
        "http://svc", token="agent-tok", admin_token="adm", transport=httpx.MockTransport(handler)
    )
    c.lease(4)
    assert seen == ["Bearer agent-tok"]


def test_the_client_module_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, latency_service.client; "
        "print(any(m.split('.')[0] in ('fastapi', 'sqlalchemy') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
