"""The kube client repeats what the API server pushed back, after a delay, and shrinks its limiter.

The API server is played by httpx's MockTransport: what is tested is the
client's policy (which answers it repeats, for how long, what it counts),
not the server.
"""

from __future__ import annotations

import ssl

import httpx
import pytest

from retention_operator.kube import client as client_mod
from retention_operator.kube.client import ATTEMPTS, KubeClient, KubeError
from retention_operator.kube.connection import Connection

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}


def _client(handler: httpx.MockTransport) -> KubeClient:
    connection = Connection(host="https://kube.test", ssl_context=ssl.create_default_context())
    return KubeClient(connection, transport=handler, max_in_flight=8)


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(client_mod.asyncio, "sleep", sleep)
    return slept


async def test_429_is_repeated_after_retry_after_and_then_succeeds(
    _no_sleep: list[float],
) -> None:
    answers = iter(
        [httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json=DEPLOYMENT)]
    )
    kube = _client(httpx.MockTransport(lambda request: next(answers)))
    got = await kube.get("apps/v1", "Deployment", "ns", "d")
    assert got == DEPLOYMENT
    assert _no_sleep == [2.0]
    assert kube.limiter.limit < kube.limiter.ceiling


async def test_a_server_that_keeps_failing_gets_a_bounded_number_of_attempts(
    _no_sleep: list[float],
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, json={"reason": "ServiceUnavailable", "message": "busy"})

    kube = _client(httpx.MockTransport(handler))
    with pytest.raises(KubeError) as raised:
        await kube.get("apps/v1", "Deployment", "ns", "d")
    assert raised.value.status == 503
    assert calls == ATTEMPTS
    # Full jitter: each delay is within its growing cap, none is the same fixed value.
    caps = [
        min(client_mod.BACKOFF_CAP_SECONDS, client_mod.BACKOFF_BASE_SECONDS * 2**a)
        for a in range(ATTEMPTS - 1)
    ]
    assert all(0 <= slept <= cap for slept, cap in zip(_no_sleep, caps, strict=True))
    assert kube.limiter.limit == kube.limiter.floor


async def test_a_refusal_is_not_repeated() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(422, json={"reason": "Invalid", "message": "spec.x: bad"})

    kube = _client(httpx.MockTransport(handler))
    with pytest.raises(KubeError, match=r"spec\.x: bad"):
        await kube.apply(
            DEPLOYMENT | {"metadata": {"name": "d", "namespace": "ns"}}, field_manager="m"
        )
    assert calls == 1


async def test_an_event_post_is_not_repeated_after_a_server_error() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(500, json={"reason": "InternalError", "message": "oops"})

    kube = _client(httpx.MockTransport(handler))
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "s.", "namespace": "ns"},
    }
    with pytest.raises(KubeError):
        await kube.create(event)
    # The server may have stored it: a second POST could make a duplicate.
    assert calls == 1


async def test_every_attempt_of_a_write_is_counted() -> None:
    answers = iter([httpx.Response(429), httpx.Response(200, json=DEPLOYMENT)])
    kube = _client(httpx.MockTransport(lambda request: next(answers)))
    await kube.apply(DEPLOYMENT | {"metadata": {"name": "d", "namespace": "ns"}}, field_manager="m")
    assert kube.counter.total == 2
