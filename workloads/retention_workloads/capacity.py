"""A bounded capacity per API process: a fixed I/O wait per request and a concurrency limit.

The real application's handlers would wait on a downstream service or a pool
of connections. For load tests of the autoscaler each API pod can be given
that shape on purpose (``RETENTION_API_SERVICE_MS``, ``RETENTION_API_CONCURRENCY``):
at most ``concurrency`` requests are served at once, each waits ``service_ms``
(an asyncio sleep, so it costs no CPU) before its handler runs, and the rest
queue in the process, in arrival order. One pod then serves about
``concurrency * 1000 / service_ms`` requests a second whatever the machine's
CPU, so adding a pod adds capacity. Both default to 0: off.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Receive, Scope, Send


class Capacity:
    """ASGI middleware: the limit and the wait above, for requests whose path is not exempt.

    Probes and scrapes are exempt (``exempt``): a pod that is busy must still
    answer its readiness probe and be scraped. The time a request waits for a
    slot is part of its response time, as it is for a client.
    """

    def __init__(
        self, app: ASGIApp, *, concurrency: int, service_ms: int, exempt: frozenset[str]
    ) -> None:
        self._app = app
        self._slots = asyncio.Semaphore(concurrency) if concurrency > 0 else None
        self._service_s = service_ms / 1000
        self._exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exempt:
            await self._app(scope, receive, send)
            return
        async with self._slots or contextlib.nullcontext():
            if self._service_s > 0:
                await asyncio.sleep(self._service_s)
            await self._app(scope, receive, send)
