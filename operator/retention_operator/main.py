"""Entry point: settings, logging, metrics endpoint, and kopf's run loop.

``retention-operator`` (console script) and ``python -m retention_operator``
both land in :func:`run`. The handlers are registered by importing
``retention_operator.handlers``; this module holds wiring only.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import kopf
import prometheus_client

from retention_operator import handlers, names, telemetry
from retention_operator import settings as settings_mod
from retention_operator.autoscaling.leadership import Leadership
from retention_operator.kube import KubeClient, load_connection
from retention_operator.kube.cache import ChildCache
from retention_operator.reconcile import WorkQueue

logger = logging.getLogger("retention_operator")
# Longest wait for the first lists of every child kind at start-up.
CACHE_SYNC_SECONDS = 300.0
LEADERSHIP_TTL_SECONDS = 1.0


@kopf.on.startup()
async def _startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours: settings_mod.Settings = memo.settings
    # Progress and the last-handled spec live in our own annotations; status stays ours.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.GROUP, key="last-handled-configuration"
    )
    # Events are posted by the operator itself (reasons it chooses), not from log lines.
    settings.posting.enabled = False
    # Guard against watches that go quiet without closing.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.peering.standalone = ours.peering_name is None
    if ours.peering_name is not None:
        settings.peering.name = ours.peering_name
        settings.peering.priority = ours.peering_priority
    connection = load_connection()
    memo.kube = KubeClient(connection, max_in_flight=ours.kube_max_in_flight)
    # Asked before each settle of a child event; a second's reuse spares a read per event.
    memo.leadership = Leadership(memo.kube, ours, ttl=LEADERSHIP_TTL_SECONDS)
    memo.work = WorkQueue(workers=ours.max_concurrent_reconciles)
    telemetry.WORK_RUNNING.set_function(lambda: memo.work.running)
    telemetry.WORK_WAITING.set_function(lambda: memo.work.waiting)
    # Every child in memory before the first handler runs: the resume of a
    # thousand stacks reads its children from here, not from the API server.
    cache = ChildCache(connection, label_selector=names.LABEL_STACK, namespaces=ours.namespaces)
    # A list the API server refuses (RBAC) fails the start-up with its message.
    async with asyncio.timeout(CACHE_SYNC_SECONDS):
        await cache.start()
    memo.cache = memo.kube.cache = cache
    # Subscribed after the first lists: what they found, the resume handlers see.
    cache.subscribe(handlers.child_listener(memo))
    logger.info("cached %d children of stacks", len(cache))
    if ours.autoscaler_enabled:
        from retention_operator.autoscaling.loop import AutoscalingLoop

        memo.autoscaler = AutoscalingLoop(kube=memo.kube, settings=ours)
        memo.autoscaler.start()
    from retention_operator.readpool.loop import ReadPoolLoop

    autoscaler = getattr(memo, "autoscaler", None)
    memo.read_pool = ReadPoolLoop(
        kube=memo.kube,
        tick_seconds=ours.read_pool_tick_seconds,
        leads=autoscaler.leads if autoscaler is not None else None,
    )
    memo.read_pool.start()
    logger.info("retention-operator started")


@kopf.on.cleanup()
async def _cleanup(memo: kopf.Memo, **_: Any) -> None:
    for loop in (getattr(memo, "autoscaler", None), getattr(memo, "read_pool", None)):
        if loop is not None:
            await loop.stop()
    work = getattr(memo, "work", None)
    if work is not None:
        await work.close()
    cache = getattr(memo, "cache", None)
    if cache is not None:
        await cache.stop()
    kube = getattr(memo, "kube", None)
    if kube is not None:
        await kube.close()


def run(argv: list[str] | None = None) -> None:
    """Run the operator until SIGTERM/SIGINT; exit 2 with a message on bad settings."""
    del argv  # Everything is configured through the environment (see settings.py).
    try:
        ours = settings_mod.from_env()
    except ValueError as exc:
        print(f"retention-operator: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    kopf.configure(
        log_format=kopf.LogFormat.JSON if ours.log_format == "json" else kopf.LogFormat.FULL,
        log_refkey="object",
    )
    # One line per API request and per liveness probe buries what the operator
    # does (seen in `kubectl logs` of the operator's pod); their failures still show.
    for noisy in ("httpx", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    prometheus_client.start_http_server(ours.metrics_port, addr=ours.bind_address)
    assert handlers  # Imported for its registrations.
    kopf.run(
        clusterwide=not ours.namespaces,
        namespaces=list(ours.namespaces),
        liveness_endpoint=f"http://{ours.bind_address}:{ours.health_port}/healthz",
        memo=kopf.Memo(settings=ours),
        standalone=ours.peering_name is None,
        peering_name=ours.peering_name,
        priority=ours.peering_priority,
    )
