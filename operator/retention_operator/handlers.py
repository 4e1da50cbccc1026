"""Thin kopf handlers: unpack kopf's arguments, call reconcile, return nothing.

A returned value would land in ``status.<handler>`` and be pruned by the
schema, so every handler returns None. Shared objects (the kube client, the
work queue, the settings, the autoscaling loop) live in kopf's ``memo``, set
up in ``main``, which also subscribes :func:`child_listener` to the cache of
children.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import kopf

from retention_operator import names, reconcile, telemetry
from retention_operator.kube import KubeClient
from retention_operator.kube.cache import Listener
from retention_operator.kube.limiter import Priority
from retention_operator.reconcile.drift import content_changed
from retention_operator.settings import Settings

STACKS = (names.GROUP, names.VERSION, names.PLURAL)
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})
# Backoff of a reconcile the API server did not answer: kopf's retry count
# doubles it up to the cap, and jitter keeps a thousand stacks from retrying in step.
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 60.0


def _kube(memo: Any) -> KubeClient:
    kube: KubeClient = memo.kube
    return kube


def _work(memo: Any) -> reconcile.WorkQueue:
    work: reconcile.WorkQueue = memo.work
    return work


def _jittered(seconds: float) -> float:
    return seconds * random.uniform(0.8, 1.2)


@kopf.on.resume(*STACKS)
@kopf.on.create(*STACKS)
@kopf.on.update(*STACKS)
async def reconcile_stack(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """Make the children match the spec; retry later while stalled or the API server is busy."""
    settings: Settings = memo.settings
    manifest = dict(body)
    # A spec not yet observed is progress to make; a resumed, observed stack can wait.
    level = Priority.PROGRESS if reconcile.unobserved(manifest) else Priority.NORMAL
    try:
        outcome = await _work(memo).run(
            level, lambda: reconcile.reconcile_stack(_kube(memo), manifest, settings=settings)
        )
    except Exception as exc:
        if not reconcile.transient(exc):
            raise
        delay = random.uniform(0.5, 1.0) * min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2**retry)
        raise kopf.TemporaryError(f"the API server did not answer: {exc}", delay=delay) from exc
    if outcome.recheck is not None:
        meta = manifest.get("metadata") or {}
        recheck(memo, str(meta.get("namespace", "")), str(meta.get("name", "")), outcome.recheck)
    if outcome.retry:
        # Not an error of the operator: a Secret or a database is missing.
        # kopf calls again after the delay, so the stack recovers without an edit.
        raise kopf.TemporaryError(outcome.message, delay=_jittered(settings.retry_seconds))


def recheck(memo: kopf.Memo, namespace: str, name: str, when: reconcile.Recheck) -> None:
    """Settle the stack after ``when.seconds``, and again while that settle asks so.

    For what no child event announces: a replica of the managed Redis Cluster
    that finishes its sync, gossip that completes a Redis step which gave up
    waiting for it, a held readiness drop that ends (``when`` comes from the
    settle or reconcile, ``reconcile.stack._recheck``). The settle runs the
    Redis step when ``when.redis_step`` says so; otherwise it only reads (the
    children, the cluster) and shares the key of a child's status refresh, so
    it coalesces with one.
    """
    settings: Settings = memo.settings

    async def refresh() -> None:
        leadership = getattr(memo, "leadership", None)
        if leadership is not None and not await leadership.leads():
            return
        again = await reconcile.settle(
            _kube(memo),
            namespace=namespace,
            name=name,
            settings=settings,
            repair=False,
            redis_step=when.redis_step,
        )
        if again is not None:
            recheck(memo, namespace, name, again)

    asyncio.get_running_loop().call_later(
        when.seconds,
        _work(memo).submit,
        (namespace, name, False, when.redis_step),
        Priority.REFRESH,
        refresh,
    )


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


def child_listener(memo: kopf.Memo) -> Listener:
    """The cache's listener: settle the owning stack when one of its children changes.

    A change of what the operator sets (spec, labels, annotations) or a
    deletion is a possible hand edit: the stack is settled at PROGRESS
    priority and repaired. A change of a workload's status only refreshes the
    stack's status, at REFRESH priority; a change of the Redis StatefulSet
    also runs the Redis Cluster step. One pending settle per stack and kind
    of work. A standby (kopf peering, ``memo.leadership`` says no) settles
    nothing: kopf freezes its handlers, not this listener.
    """
    settings: Settings = memo.settings

    def listener(kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        obj = new or old or {}
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        stack = str((meta.get("labels") or {}).get(names.LABEL_STACK, ""))
        if not stack:
            return
        repair = new is None or old is None or content_changed(old, new)
        if not repair and kind not in WORKLOAD_KINDS:
            return
        level = Priority.PROGRESS if repair else Priority.REFRESH
        component = (meta.get("labels") or {}).get(names.LABEL_COMPONENT)
        redis_step = (
            kind == "StatefulSet" and component == names.COMPONENT_REDIS and new is not None
        )

        async def settle() -> None:
            leadership = getattr(memo, "leadership", None)
            if leadership is not None and not await leadership.leads():
                return
            again = await reconcile.settle(
                _kube(memo),
                namespace=namespace,
                name=stack,
                settings=settings,
                repair=repair,
                redis_step=redis_step,
            )
            if again is not None:
                recheck(memo, namespace, stack, again)

        # The Redis step is part of the key, so a pending status refresh never swallows it.
        _work(memo).submit((namespace, stack, repair, redis_step), level, settle)

    return listener
