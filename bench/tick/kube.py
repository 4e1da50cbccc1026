"""The API server the benchmarked tick talks to: dicts, answering the loop's calls.

At rest the real operator lists Deployments from its watch cache (no request, no
copy) and sends nothing else, so this answers ``list`` from a dict without copying and
keeps what the loop writes: the tick's CPU is the loop's own, not a client's.
"""

from __future__ import annotations

from typing import Any

Manifest = dict[str, Any]


class MemoryKube:
    """Deployments by namespace; records the writes a tick sends."""

    def __init__(self) -> None:
        self.deployments: dict[str, dict[str, Manifest]] = {}
        self.status: dict[tuple[str, str], Manifest] = {}
        self.writes = 0

    def add_deployment(self, namespace: str, name: str, *, replicas: int) -> None:
        """A Deployment at ``replicas``, all of them ready."""
        self.deployments.setdefault(namespace, {})[name] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas},
            "status": {"readyReplicas": replicas},
        }

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[Manifest]:
        return list(self.deployments.get(namespace or "", {}).values())

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> Manifest | None:
        return None

    async def apply(
        self, manifest: Manifest, *, field_manager: str, force: bool = True
    ) -> Manifest:
        self.writes += 1
        meta = manifest["metadata"]
        live = self.deployments[meta["namespace"]][meta["name"]]
        live["spec"]["replicas"] = live["status"]["readyReplicas"] = manifest["spec"]["replicas"]
        return live

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Manifest
    ) -> Manifest | None:
        self.writes += 1
        key = (namespace, name)
        stored = self.status[key] = _merged(self.status.get(key, {}), status)
        return {"status": stored}

    async def create(self, manifest: Manifest) -> Manifest:
        self.writes += 1
        return manifest


def _merged(into: Manifest, patch: Manifest) -> Manifest:
    """A JSON merge patch applied as the API server applies it (None deletes a key)."""
    out = dict(into)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = _merged(out.get(key) or {}, value)
        else:
            out[key] = value
    return out
