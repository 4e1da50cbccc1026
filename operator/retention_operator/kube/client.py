"""An async Kubernetes API client for exactly what the operator does.

Reads return ``None`` (or an empty list) when the object is absent; writes use
server-side apply with a named field manager, or merge patches on ``/status``.
Every mutating request is counted in :class:`MutationCounter` and in the
operator's ``retention_operator_kube_requests_total`` metric.

Requests wait for a slot of one :class:`~retention_operator.kube.limiter.Limiter`
(as many slots as the HTTP pool has connections), so a thousand handlers at
once queue instead of timing out on the pool. A request the API server pushes
back (429, 5xx) or that times out is sent again after a jittered, growing
delay (or the server's ``Retry-After``), without holding a slot meanwhile,
and it shrinks the limiter: retries never pile onto a server that is slow.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from retention_operator import telemetry
from retention_operator.kube.connection import Connection
from retention_operator.kube.limiter import Limiter
from retention_operator.kube.resources import resource

if TYPE_CHECKING:
    from retention_operator.kube.cache import ChildCache

Manifest = dict[str, Any]
MUTATING_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Requests in flight at once (and connections in the pool).
DEFAULT_MAX_IN_FLIGHT = 32
# Attempts of one request before its last answer (or error) goes to the caller.
ATTEMPTS = 5
# Backoff between attempts: uniform in [0, min(CAP, BASE * 2**attempt)] ("full jitter").
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 10.0
# Answers that mean "the server did not do it, try later".
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class KubeError(Exception):
    """The API server refused a request for a reason other than 404 (or 409 where expected).

    ``message`` is the server's own text, which names the offending field for
    validation errors; it never contains object data sent by the operator.
    """

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


@dataclass
class MutationCounter:
    """Counts mutating requests by (verb, kind); tests read ``total``."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def record(self, verb: str, kind: str) -> None:
        self.counts[(verb, kind)] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: retries of many callers spread out instead of syncing."""
    return random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))


def _retry_after(response: httpx.Response) -> float | None:
    """The server's Retry-After in seconds (capped), or None when absent or unreadable."""
    raw = response.headers.get("Retry-After", "")
    try:
        return min(BACKOFF_CAP_SECONDS * 3, max(0.0, float(raw)))
    except ValueError:
        return None


def error_of(response: httpx.Response) -> KubeError:
    """The KubeError of a refused request, with the server's reason and message."""
    try:
        body = response.json()
        return KubeError(
            response.status_code, str(body.get("reason", "")), str(body.get("message", ""))
        )
    except ValueError:
        return KubeError(response.status_code, response.reason_phrase, response.text[:500])


class KubeClient:
    """One HTTP/2-less keep-alive client per operator process (bound to its event loop)."""

    def __init__(
        self,
        connection: Connection,
        *,
        counter: MutationCounter | None = None,
        timeout: float = 15.0,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.connection = connection
        self.counter = counter or MutationCounter()
        self.limiter = Limiter(max_in_flight)
        self.cache: ChildCache | None = None
        """Set by the operator at start-up: reads of the children's kinds are served from it."""
        self._http = httpx.AsyncClient(
            base_url=connection.host,
            verify=connection.ssl_context,
            # The limiter admits at most max_in_flight requests, so the pool never
            # runs dry; its own timeout only guards against a bug.
            timeout=httpx.Timeout(timeout, pool=max(60.0, timeout)),
            limits=httpx.Limits(
                max_connections=max_in_flight, max_keepalive_connections=max_in_flight
            ),
            headers={"User-Agent": "retention-operator"},
            transport=transport,
        )
        telemetry.KUBE_IN_FLIGHT.set_function(lambda: self.limiter.in_flight)
        telemetry.KUBE_WAITING.set_function(lambda: self.limiter.waiting)
        telemetry.KUBE_LIMIT.set_function(lambda: self.limiter.limit)

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        kind: str,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> httpx.Response:
        """Send one request, again after a backoff while the server says "later".

        Every request here is safe to repeat: reads, server-side apply and merge
        patches are idempotent, and the only POST (an Event) is repeated only when
        the server did not take it (429) or the connection never opened.
        """
        headers = self.connection.headers()
        if content_type:
            headers["Content-Type"] = content_type
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            try:
                async with self.limiter.slot():
                    response = await self._http.request(
                        method, path, params=params, content=content, headers=headers
                    )
            except httpx.TransportError as exc:
                telemetry.KUBE_REQUESTS.labels(verb=method, kind=kind, code="error").inc()
                self.limiter.overloaded()
                repeatable = method != "POST" or isinstance(exc, httpx.ConnectError)
                if last or not repeatable:
                    raise
                await asyncio.sleep(_backoff(attempt))
                continue
            if method in MUTATING_VERBS:
                self.counter.record(method, kind)
            code = response.status_code
            telemetry.KUBE_REQUESTS.labels(verb=method, kind=kind, code=str(code)).inc()
            if code not in RETRY_STATUSES:
                self.limiter.answered()
                return response
            self.limiter.overloaded()
            if last or (method == "POST" and code != 429):
                return response
            await asyncio.sleep(_retry_after(response) or _backoff(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> Manifest | None:
        """Return the object, or None if it does not exist (from the cache for children)."""
        if self.cache is not None and self.cache.covers(api_version, kind):
            return self.cache.get(kind, namespace, name)
        res = resource(api_version, kind)
        response = await self._request("GET", res.item(namespace, name), kind=kind)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise error_of(response)
        result: Manifest = response.json()
        return result

    async def serves(self, api_version: str, kind: str) -> bool:
        """Return True if the API server serves ``kind`` in ``api_version`` (its discovery).

        False when the group-version is unknown (404), as when a CRD is not installed.
        """
        res = resource(api_version, kind)
        response = await self._request("GET", res.base(), kind=kind)
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise _error(response)
        return any(r.get("kind") == kind for r in response.json().get("resources", []))

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[Manifest]:
        """Return the objects of a kind (in a namespace, or everywhere), optionally by label."""
        if self.cache is not None and self.cache.covers(api_version, kind):
            cached = self.cache.select(kind, namespace, label_selector=label_selector)
            if cached is not None:
                return cached
        res = resource(api_version, kind)
        params = {"labelSelector": label_selector} if label_selector else None
        response = await self._request("GET", res.collection(namespace), kind=kind, params=params)
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise error_of(response)
        items: list[Manifest] = response.json().get("items", [])
        return items

    async def _patch_object(
        self, manifest: Manifest, body: Manifest, *, params: dict[str, str], content_type: str
    ) -> httpx.Response:
        """PATCH ``body`` into the object that ``manifest`` names."""
        res = resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        return await self._request(
            "PATCH",
            res.item(meta.get("namespace"), meta["name"]),
            kind=res.kind,
            params=params,
            content=json.dumps(body).encode(),
            content_type=content_type,
        )

    async def apply(
        self, manifest: Manifest, *, field_manager: str, force: bool = True
    ) -> Manifest:
        """Server-side apply ``manifest`` as ``field_manager`` and return the object as stored.

        ``force`` takes over fields another manager set (the reconciler is the
        authority for what it builds). Raises KubeError with the server's
        message on refusal (for example a validation error naming a field).
        """
        response = await self._patch_object(
            manifest,
            manifest,
            params={"fieldManager": field_manager, "force": "true" if force else "false"},
            content_type="application/apply-patch+yaml",
        )
        if response.status_code not in (200, 201):
            raise error_of(response)
        result: Manifest = response.json()
        if self.cache is not None:
            self.cache.put(result)
        return result

    async def replace_lists(
        self, manifest: Manifest, patch: Manifest, *, field_manager: str
    ) -> None:
        """Strategic-merge-patch ``patch`` (which may hold ``$patch: replace``) into the object
        ``manifest`` names. Raises KubeError on refusal; a missing object is no error."""
        response = await self._patch_object(
            manifest,
            patch,
            params={"fieldManager": field_manager},
            content_type="application/strategic-merge-patch+json",
        )
        if response.status_code not in (200, 404):
            raise error_of(response)

    async def create(self, manifest: Manifest) -> Manifest:
        """POST ``manifest`` (which may use metadata.generateName) and return what was stored."""
        res = resource(manifest["apiVersion"], manifest["kind"])
        response = await self._request(
            "POST",
            res.collection(manifest["metadata"].get("namespace")),
            kind=res.kind,
            content=json.dumps(manifest).encode(),
            content_type="application/json",
        )
        if response.status_code not in (200, 201):
            raise error_of(response)
        result: Manifest = response.json()
        return result

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Manifest
    ) -> Manifest | None:
        """Merge-patch ``status`` into the status subresource; None if the object is gone."""
        res = resource(api_version, kind)
        response = await self._request(
            "PATCH",
            res.item(namespace, name) + "/status",
            kind=kind,
            content=json.dumps({"status": status}).encode(),
            content_type="application/merge-patch+json",
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise error_of(response)
        result: Manifest = response.json()
        return result
