"""The floor under the operator's figures: the same children, applied without an operator.

What a careful user without an operator would do: render every stack's
children offline (here with the operator's own builders, so the objects are
the same: ConfigMap, three Deployments at their first size, two Services, a
PDB, two NetworkPolicies) and apply them once (:mod:`.applier`, as the
stacks are applied on the operator's side). The time until
every Deployment exists and until every one is ready is what the control
plane on this machine needs for that many objects; the operator cannot do
better, so its own figures read best against this one, taken the same way.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.operator.applier import apply_all
from harness.controlplane import ControlPlane
from retention_operator.model import stack_from_body
from retention_operator.reconcile import children

TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"


class _NoPodMonitors:
    """The one question desired() asks the API server for a stack on an external Redis."""

    async def serves(self, api_version: str, kind: str) -> bool:
        # The benchmark's cluster has no Prometheus Operator CRDs.
        return False


async def _rendered(stack: dict[str, Any]) -> list[dict[str, Any]]:
    parsed = stack_from_body(stack)
    out = []
    kube: Any = _NoPodMonitors()
    for child in await children.desired(kube, parsed, operator_namespace=None):
        manifest = dict(child.manifest)
        # No stack object exists: an owner reference to it would be garbage-collected.
        manifest["metadata"] = {
            k: v for k, v in manifest["metadata"].items() if k != "ownerReferences"
        }
        if child.initial_replicas is not None:
            manifest["spec"] = {"replicas": child.initial_replicas, **manifest["spec"]}
        out.append(manifest)
    return out


def manifests(stacks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every child of every stack, as the operator would build it, ready for kubectl."""
    for i, stack in enumerate(stacks):
        stack["metadata"] = {**stack["metadata"], "uid": f"floor-{i}", "generation": 1}

    async def render() -> list[dict[str, Any]]:
        return [m for s in stacks for m in await _rendered(s)]

    return asyncio.run(render())


def _deployments(http: httpx.Client, server: str, namespace: str) -> tuple[int, int]:
    """(Deployments that exist, Deployments whose ready replicas reached spec.replicas)."""
    table = http.get(
        f"{server}/apis/apps/v1/namespaces/{namespace}/deployments", headers={"Accept": TABLE}
    ).json()
    rows = table.get("rows") or []
    ready = 0
    for row in rows:
        have, _, want = str(row["cells"][1]).partition("/")
        ready += int(have == want and want not in ("", "0"))
    return len(rows), ready


def run_floor(
    cp: ControlPlane,
    http: httpx.Client,
    *,
    base: Path,
    namespace: str,
    stacks: list[dict[str, Any]],
    extra: list[dict[str, Any]],
    timeout: float,
    poll: float,
) -> dict[str, Any]:
    """Apply the rendered children in one apply; time existence and readiness."""
    items = extra + manifests(stacks)
    path = base / "children.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items}))
    want = 3 * len(stacks)
    began = time.monotonic()
    applied = apply_all(cp, items)
    exist_at = ready_at = None
    while time.monotonic() - began < timeout:
        try:
            exist, ready = _deployments(http, cp.server, namespace)
        except httpx.HTTPError:
            time.sleep(poll)
            continue
        now = time.monotonic() - began
        if exist_at is None and exist >= want:
            exist_at = now
        if ready >= want:
            ready_at = now
            break
        time.sleep(poll)
    return {
        "objects": len(items),
        "apply_s": round(applied, 1),
        "all_children_exist_s": None if exist_at is None else round(exist_at, 1),
        "all_deployments_ready_s": None if ready_at is None else round(ready_at, 1),
    }
