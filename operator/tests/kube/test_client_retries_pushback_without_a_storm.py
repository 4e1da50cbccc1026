"""The kube client repeats what the API server pushed back, after a delay, and shrinks its limiter.

The API server is played by a small aiohttp server on loopback that answers
from a script: what is tested is the client's policy (which answers it
repeats, how often, what it counts), not the API server.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from retention_operator.kube import client as client_mod
from retention_operator.kube.client import ATTEMPTS, KubeClient, KubeError, KubeUnreachable
from retention_operator.kube.connection import Connection

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
NAMED = DEPLOYMENT | {"metadata": {"name": "d", "namespace": "ns"}}
Script = Callable[[web.Request], web.Response]


def _answer(status: int, body: dict[str, Any] | None = None, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body or {}).encode(),
        content_type="application/json",
        headers=headers,
    )


class FakeServer:
    """Answers every request with ``script(request)`` and counts the calls."""

    def __init__(self) -> None:
        self.script: Script = lambda request: _answer(200, DEPLOYMENT)
        self.calls = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        return self.script(request)


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    fake = FakeServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    delays: list[float] = []
    real_sleep = client_mod.asyncio.sleep

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(client_mod.asyncio, "sleep", sleep)
    return delays


def _client(url: str) -> KubeClient:
    connection = Connection(host=url, ssl_context=ssl.create_default_context())
    return KubeClient(connection, max_in_flight=8)


async def test_429_is_repeated_after_retry_after_and_then_succeeds(
    server: FakeServer, slept: list[float]
) -> None:
    answers = iter([_answer(429, {}, **{"Retry-After": "2"}), _answer(200, DEPLOYMENT)])
    server.script = lambda request: next(answers)
    kube = _client(server.url)
    try:
        assert await kube.get("apps/v1", "Deployment", "ns", "d") == DEPLOYMENT
    finally:
        await kube.close()
    assert slept == [2.0]
    assert kube.limiter.limit < kube.limiter.ceiling


async def test_a_server_that_keeps_failing_gets_a_bounded_number_of_attempts(
    server: FakeServer, slept: list[float]
) -> None:
    server.script = lambda request: _answer(503, {"reason": "ServiceUnavailable", "message": "x"})
    kube = _client(server.url)
    try:
        with pytest.raises(KubeError) as raised:
            await kube.get("apps/v1", "Deployment", "ns", "d")
    finally:
        await kube.close()
    assert raised.value.status == 503
    assert server.calls == ATTEMPTS
    # Full jitter: each delay is within its growing cap.
    caps = [
        min(client_mod.BACKOFF_CAP_SECONDS, client_mod.BACKOFF_BASE_SECONDS * 2**a)
        for a in range(ATTEMPTS - 1)
    ]
    assert all(0 <= delay <= cap for delay, cap in zip(slept, caps, strict=True))
    assert kube.limiter.limit == kube.limiter.floor


async def test_a_refusal_is_not_repeated(server: FakeServer) -> None:
    server.script = lambda request: _answer(422, {"reason": "Invalid", "message": "spec.x: bad"})
    kube = _client(server.url)
    try:
        with pytest.raises(KubeError, match=r"spec\.x: bad"):
            await kube.apply(NAMED, field_manager="m")
    finally:
        await kube.close()
    assert server.calls == 1


async def test_an_event_post_is_not_repeated_after_a_server_error(server: FakeServer) -> None:
    server.script = lambda request: _answer(500, {"reason": "InternalError", "message": "oops"})
    kube = _client(server.url)
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "s.", "namespace": "n"},
    }
    try:
        with pytest.raises(KubeError):
            await kube.create(event)
    finally:
        await kube.close()
    # The server may have stored it: a second POST could make a duplicate.
    assert server.calls == 1


async def test_every_attempt_of_a_write_is_counted(server: FakeServer, slept: list[float]) -> None:
    answers = iter([_answer(429), _answer(200, DEPLOYMENT)])
    server.script = lambda request: next(answers)
    kube = _client(server.url)
    try:
        await kube.apply(NAMED, field_manager="m")
    finally:
        await kube.close()
    assert kube.counter.total == 2


async def test_no_server_at_all_is_a_kube_error_naming_the_request(slept: list[float]) -> None:
    kube = _client("http://127.0.0.1:9")
    try:
        with pytest.raises(KubeUnreachable, match="GET /apis/apps/v1/namespaces/ns/deployments/d"):
            await kube.get("apps/v1", "Deployment", "ns", "d")
    finally:
        await kube.close()
    assert len(slept) == ATTEMPTS - 1
