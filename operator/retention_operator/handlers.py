"""Thin kopf handlers: unpack kopf's arguments, call reconcile, return nothing.

A returned value would land in ``status.<handler>`` and be pruned by the
schema, so every handler returns None. Shared objects (the kube client, the
settings, the autoscaling loop) live in kopf's ``memo``, set up in ``main``.
"""

from __future__ import annotations

from typing import Any

import kopf

from retention_operator import names, reconcile, telemetry
from retention_operator.kube import KubeClient
from retention_operator.settings import Settings

STACKS = (names.GROUP, names.VERSION, names.PLURAL)


def _kube(memo: Any) -> KubeClient:
    kube: KubeClient = memo.kube
    return kube


@kopf.on.resume(*STACKS)
@kopf.on.create(*STACKS)
@kopf.on.update(*STACKS)
async def reconcile_stack(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Make the children match the spec; retry later while the stack is stalled."""
    settings: Settings = memo.settings
    outcome = await reconcile.reconcile_stack(_kube(memo), dict(body), settings=settings)
    if outcome.retry:
        # Not an error of the operator: a Secret or a database is missing.
        # kopf calls again after the delay, so the stack recovers without an edit.
        raise kopf.TemporaryError(outcome.message, delay=settings.retry_seconds)


@kopf.on.event(*STACKS)
async def stack_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the autoscaling and read pool loops' lists of stacks current; forget deleted ones."""
    obj = event.get("object") or {}
    meta = obj.get("metadata", {})
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    loops = [getattr(memo, attr, None) for attr in ("autoscaler", "read_pool")]
    for loop in loops:
        if loop is None:
            continue
        if event.get("type") == "DELETED":
            loop.forget(namespace, name)
        else:
            loop.track(dict(obj))
    if event.get("type") == "DELETED":
        telemetry.forget_stack(namespace, name)


@kopf.on.event("apps", "v1", "deployments", labels={names.LABEL_STACK: kopf.PRESENT})
@kopf.on.event("apps", "v1", "statefulsets", labels={names.LABEL_STACK: kopf.PRESENT})
async def child_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """A child's readiness changed: refresh the owning stack's status (only if it changed)."""
    obj = event.get("object") or {}
    meta = obj.get("metadata", {})
    stack = (meta.get("labels") or {}).get(names.LABEL_STACK)
    if stack and event.get("type") != "DELETED":
        await reconcile.refresh_status(_kube(memo), namespace=meta.get("namespace", ""), name=stack)
