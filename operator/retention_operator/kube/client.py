"""An async Kubernetes API client for exactly what the operator does.

Reads return ``None`` (or an empty list) when the object is absent; writes use
server-side apply with a named field manager, or merge patches on ``/status``.
Every mutating request is counted in :class:`MutationCounter` and in the
operator's ``retention_operator_kube_requests_total`` metric.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from retention_operator import telemetry
from retention_operator.kube.connection import Connection
from retention_operator.kube.resources import resource

Manifest = dict[str, Any]
MUTATING_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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


def _error(response: httpx.Response) -> KubeError:
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
    ) -> None:
        self.connection = connection
        self.counter = counter or MutationCounter()
        self._http = httpx.AsyncClient(
            base_url=connection.host,
            verify=connection.ssl_context,
            timeout=timeout,
            headers={"User-Agent": "retention-operator"},
        )

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
        headers = self.connection.headers()
        if content_type:
            headers["Content-Type"] = content_type
        response = await self._http.request(
            method, path, params=params, content=content, headers=headers
        )
        if method in MUTATING_VERBS:
            self.counter.record(method, kind)
        telemetry.KUBE_REQUESTS.labels(verb=method, kind=kind, code=str(response.status_code)).inc()
        return response

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> Manifest | None:
        """Return the object, or None if it does not exist."""
        res = resource(api_version, kind)
        response = await self._request("GET", res.item(namespace, name), kind=kind)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _error(response)
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
        res = resource(api_version, kind)
        params = {"labelSelector": label_selector} if label_selector else None
        response = await self._request("GET", res.collection(namespace), kind=kind, params=params)
        if response.status_code == 404:
            return []
        if response.status_code != 200:
            raise _error(response)
        items: list[Manifest] = response.json().get("items", [])
        return items

    async def apply(
        self, manifest: Manifest, *, field_manager: str, force: bool = True
    ) -> Manifest:
        """Server-side apply ``manifest`` as ``field_manager`` and return the object as stored.

        ``force`` takes over fields another manager set (the reconciler is the
        authority for what it builds). Raises KubeError with the server's
        message on refusal (for example a validation error naming a field).
        """
        res = resource(manifest["apiVersion"], manifest["kind"])
        meta = manifest["metadata"]
        response = await self._request(
            "PATCH",
            res.item(meta.get("namespace"), meta["name"]),
            kind=res.kind,
            params={"fieldManager": field_manager, "force": "true" if force else "false"},
            content=json.dumps(manifest).encode(),
            content_type="application/apply-patch+yaml",
        )
        if response.status_code not in (200, 201):
            raise _error(response)
        result: Manifest = response.json()
        return result

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
            raise _error(response)
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
            raise _error(response)
        result: Manifest = response.json()
        return result
