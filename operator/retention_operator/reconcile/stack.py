"""Reconcile a RetentionStack: preflight, children, Redis, status; settle it when a child changes.

:func:`reconcile_stack` is called by the kopf handlers (create, update,
resume). The order is fixed: parse, honour ``paused``, check what only the
operator can judge (Secrets, reachability), then apply children, then bring
the managed Redis Cluster to its shape (:func:`.managed_redis.converge`),
then write status, which only reads. A problem at any step stops before any
child is written, so a bad input never deletes or changes what already runs.

:func:`settle` is called when the children's watch reports a change: it puts
back what was edited or deleted by hand (with a ``DriftCorrected`` Event
naming it), runs the Redis step when the Redis StatefulSet changed, and
refreshes the status from the children's readiness.

Each stack is handled by one task at a time (a lock per stack), because
child events and spec changes can race.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pydantic

from retention_operator import names, telemetry
from retention_operator.kube import KubeClient, KubeError, KubeUnreachable, events
from retention_operator.model import RetentionStack, stack_from_body
from retention_operator.reconcile import apply, children, managed_redis, preflight, readiness_hold
from retention_operator.reconcile.redis_status import REASON_FAILOVER, redis_status
from retention_operator.reconcile.status import (
    ComponentHealth,
    Problem,
    needs_write,
    status_patch,
    workload_health,
)
from retention_operator.redis_cluster import ClusterHealth
from retention_operator.settings import Settings

logger = logging.getLogger(__name__)
_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

REASON_INVALID_SPEC = "InvalidSpec"
REASON_APPLY_REFUSED = "ApplyRefused"
REASON_DRIFT_CORRECTED = "DriftCorrected"
# Answers that say "not now" rather than "not this": retried, never a Stalled stack.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def transient(exc: BaseException) -> bool:
    """Whether an error of the kube layer is worth a retry (the API server was busy or away)."""
    return isinstance(exc, KubeUnreachable) or (
        isinstance(exc, KubeError) and exc.status in TRANSIENT_STATUSES
    )


def unobserved(body: dict[str, Any]) -> bool:
    """Whether the stack's status does not yet describe its current spec generation."""
    status = body.get("status") or {}
    return bool(status.get("observedGeneration") != (body.get("metadata") or {}).get("generation"))


def _stalled(body: dict[str, Any]) -> bool:
    return any(
        c.get("type") == names.CONDITION_STALLED and c.get("status") == "True"
        for c in (body.get("status") or {}).get("conditions", [])
    )


@dataclass(frozen=True)
class Recheck:
    """A settle asked for later, for what no child event will announce (:func:`_recheck`).

    ``redis_step``: the managed cluster is not yet what the spec asks and the
    Redis step may have more to do (it gave up waiting for gossip), so the
    settle runs it; otherwise the settle only reads and writes the status.
    """

    seconds: float
    redis_step: bool = False


@dataclass(frozen=True)
class Outcome:
    """What a reconcile ended with; ``retry`` asks the caller to try again later.

    ``recheck``: when the caller settles the stack again (:class:`Recheck`); None: no need.
    """

    retry: bool = False
    message: str = ""
    writes: int = 0
    recheck: Recheck | None = None


def _meta(body: dict[str, Any]) -> tuple[str, str, str, int | None]:
    meta = body.get("metadata", {})
    return (
        meta.get("namespace", ""),
        meta.get("name", ""),
        meta.get("uid", ""),
        meta.get("generation"),
    )


@dataclass(frozen=True)
class _Observed:
    """What a status write reports: each component's health, the managed cluster as read.

    ``hold_left``: seconds until a held readiness drop (:mod:`.readiness_hold`)
    ends; None when nothing is held.
    """

    components: dict[str, ComponentHealth]
    cluster: ClusterHealth | None = None
    hold_left: float | None = None

    @property
    def syncing(self) -> bool:
        """True while a replica of the managed cluster is not yet linked and synced."""
        return self.cluster is not None and bool(self.cluster.syncing)

    @property
    def converging(self) -> bool:
        """True while every node of the managed cluster answers but the cluster is not yet
        formed, ok or of the asked shape: a Redis step that gave up waiting for gossip
        (it waits seconds) leaves it so, and no child event comes when gossip is done."""
        cluster = self.cluster
        return (
            cluster is not None
            and cluster.total > 0
            and cluster.answering == cluster.total
            and not (cluster.formed and cluster.state_ok and cluster.settled)
        )


def _recheck(observed: _Observed, settings: Settings) -> Recheck | None:
    """When the stack must be settled again though no child event may come; None if not.

    A managed cluster still converging (the Redis step runs again) or with a
    replica still syncing (the status is read again): after ``retry_seconds``,
    jittered so that many stacks do not refresh in step. A held readiness
    drop: just after the hold ends, when a drop that lasts is reported.
    """
    waits = []
    if observed.syncing or observed.converging:
        waits.append(settings.retry_seconds * random.uniform(0.8, 1.2))
    if observed.hold_left is not None:
        waits.append(observed.hold_left + readiness_hold.RECHECK_MARGIN_SECONDS)
    if not waits:
        return None
    return Recheck(min(waits), redis_step=observed.converging)


# Writes the status from what a step in progress observed.
_ProgressWrite = Callable[[_Observed], Awaitable[None]]


async def _observe(
    kube: KubeClient,
    stack: RetentionStack,
    *,
    cluster: ClusterHealth | None = None,
    body: dict[str, Any] | None = None,
) -> _Observed:
    """Read the children's readiness and the Redis cluster's state (reads only, no writes).

    ``cluster``: the cluster as a step in progress has just read it, used
    instead of reading it again. ``body``: the stack as stored; a stack
    stored Ready holds a brief readiness drop of pods that never stopped
    (:mod:`.readiness_hold`), without it nothing is held.
    """
    health: dict[str, ComponentHealth] = {}
    since = readiness_hold.ready_since((body or {}).get("status") or {})
    now = dt.datetime.now(dt.UTC)
    hold_left: float | None = None
    for component, (api_version, kind, name) in children.workloads(stack).items():
        live = await kube.get(api_version, kind, stack.namespace, name)
        what = f"{kind} {name}"
        health[component], left = await readiness_hold.hold(
            kube, live, workload_health(live, what=what), what=what, since=since, now=now
        )
        if left is not None:
            hold_left = left if hold_left is None else min(hold_left, left)
    redis_health, cluster = await managed_redis.health(
        kube, stack, health.get(names.COMPONENT_REDIS), cluster=cluster
    )
    if redis_health is not None:
        health[names.COMPONENT_REDIS] = redis_health
    return _Observed(health, cluster, hold_left)


async def _write_status(
    kube: KubeClient,
    body: dict[str, Any],
    *,
    observed: _Observed,
    stack: RetentionStack | None,
    problem: Problem | None,
    paused: bool,
    keep_generation: bool = False,
) -> bool:
    """Write the status if it changed; ``keep_generation`` leaves observedGeneration as stored.

    ``body``'s status is updated to what was written, so that a later write
    of the same reconcile compares with it. A failover newly seen in the
    cluster is recorded in ``status.redis`` and posted as an Event.
    """
    namespace, name, uid, generation = _meta(body)
    current = body.get("status") or {}
    if keep_generation:
        generation = current.get("observedGeneration")
    redis_block, failover = None, None
    managed = stack.spec.redis.managed if stack is not None else None
    if managed is not None and observed.cluster is not None and observed.cluster.answering:
        redis_block, failover = redis_status(
            current.get("redis"), observed.cluster, shards=managed.shards, now=_now()
        )
    patch = status_patch(
        previous=current,
        generation=generation,
        components=observed.components,
        problem=problem,
        paused=paused,
        redis=redis_block,
    )
    for condition in patch["conditions"]:
        telemetry.STACK_CONDITION.labels(namespace, name, condition["type"]).set(
            1 if condition["status"] == "True" else 0
        )
    if not needs_write(current, patch):
        return False
    await kube.patch_status(names.API_VERSION, names.KIND, namespace, name, patch)
    body["status"] = {**current, **patch}
    if failover is not None:
        telemetry.stack_logger(logger, namespace, name).info("Redis cluster: %s", failover.message)
        await events.post(
            kube,
            namespace=namespace,
            name=name,
            uid=uid,
            type_="Normal",
            reason=REASON_FAILOVER,
            message=failover.message,
        )
    return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _converge(
    kube: KubeClient, stack: RetentionStack, body: dict[str, Any], write: _ProgressWrite
) -> None:
    """The Redis step; while slots move, the status says how far (reason ``Resharding``).

    While the step waits for replicas to sync, the status says which.
    """

    async def progress(cluster: ClusterHealth) -> None:
        await write(await _observe(kube, stack, cluster=cluster, body=body))

    await managed_redis.converge(kube, stack, on_progress=progress)


async def _stall(
    kube: KubeClient, body: dict[str, Any], stack: RetentionStack | None, problem: Problem
) -> Outcome:
    namespace, name, uid, _ = _meta(body)
    log = telemetry.stack_logger(logger, namespace, name)
    was_stalled = any(
        c.get("type") == names.CONDITION_STALLED
        and c.get("status") == "True"
        and c.get("reason") == problem.reason
        for c in (body.get("status") or {}).get("conditions", [])
    )
    observed = await _observe(kube, stack) if stack is not None else _Observed({})
    wrote = await _write_status(
        kube, body, observed=observed, stack=stack, problem=problem, paused=False
    )
    if not was_stalled:
        log.warning("stalled: %s", problem.message)
        await events.post(
            kube,
            namespace=namespace,
            name=name,
            uid=uid,
            type_="Warning",
            reason=problem.reason,
            message=problem.message,
        )
    return Outcome(retry=True, message=problem.message, writes=int(wrote))


async def reconcile_stack(kube: KubeClient, body: dict[str, Any], *, settings: Settings) -> Outcome:
    """Reconcile one stack from its body; see the module docstring for the order of steps."""
    namespace, name, _, _ = _meta(body)
    began = time.monotonic()
    async with _locks[(namespace, name)]:
        try:
            outcome = await _reconcile_locked(kube, body, settings=settings)
        except Exception:
            telemetry.RECONCILE_ERRORS.labels(telemetry.CONTROLLER).inc()
            telemetry.RECONCILE_TOTAL.labels(telemetry.CONTROLLER, "error").inc()
            raise
        finally:
            telemetry.RECONCILE_TIME.labels(telemetry.CONTROLLER).observe(time.monotonic() - began)
    result = "requeue" if outcome.retry else "success"
    telemetry.RECONCILE_TOTAL.labels(telemetry.CONTROLLER, result).inc()
    return outcome


async def _reconcile_locked(
    kube: KubeClient, body: dict[str, Any], *, settings: Settings
) -> Outcome:
    try:
        stack = stack_from_body(body)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return await _stall(
            kube, body, None, Problem(REASON_INVALID_SPEC, f"{where}: {first.get('msg', '')}")
        )
    if stack.spec.paused:
        observed = await _observe(kube, stack, body=body)
        wrote = await _write_status(
            kube, body, observed=observed, stack=stack, problem=None, paused=True
        )
        return Outcome(writes=int(wrote), recheck=_recheck(observed, settings))
    problem = await preflight.secrets_problem(kube, stack) or await preflight.reachability_problem(
        kube, stack
    )
    if problem is not None:
        return await _stall(kube, body, stack, problem)
    try:
        writes, restored = await _apply_children(
            kube, stack, settings=settings, observed=not unobserved(body)
        )
    except KubeError as exc:
        if transient(exc):
            raise
        # The API server refused a child: report it and leave everything else as is.
        return await _stall(kube, body, stack, Problem(REASON_APPLY_REFUSED, exc.message))
    await _report_restored(kube, body, restored)
    # The cluster's own state is a step of its own, after the pods it runs on.
    progress_writes = 0

    async def write(observed: _Observed) -> None:
        nonlocal progress_writes
        wrote = await _write_status(
            kube, body, observed=observed, stack=stack, problem=None, paused=False
        )
        progress_writes += int(wrote)

    await _converge(kube, stack, body, write)
    writes += progress_writes
    try:
        writes += await _finish_scale_in(kube, stack)
    except KubeError as exc:
        if transient(exc):
            raise
        return await _stall(kube, body, stack, Problem(REASON_APPLY_REFUSED, exc.message))
    observed = await _observe(kube, stack, body=body)
    if await _write_status(kube, body, observed=observed, stack=stack, problem=None, paused=False):
        writes += 1
    return Outcome(writes=writes, recheck=_recheck(observed, settings))


async def _finish_scale_in(kube: KubeClient, stack: RetentionStack) -> int:
    """Shrink the Redis StatefulSet once the cluster has released the pods past the spec's count.

    Returns 1 if it wrote. Until they are released :func:`children.desired`
    keeps them (:func:`.managed_redis.pods_to_run`), so this is a no-op.
    """
    if not await managed_redis.shrink_pending(kube, stack):
        return 0
    child = await children.redis_statefulset(kube, stack)
    result = await apply.ensure(kube, child.manifest)
    if result.wrote:
        telemetry.stack_logger(logger, stack.namespace, stack.name).info(
            "applied StatefulSet %s", child.manifest["metadata"]["name"]
        )
    return int(result.wrote)


async def _apply_children(
    kube: KubeClient, stack: RetentionStack, *, settings: Settings, observed: bool
) -> tuple[int, list[str]]:
    """Ensure every child, in :func:`children.waves`; return (writes, what was put back).

    ``observed``: the status already describes this spec, so a child found
    missing was deleted (and is reported as put back), not yet to be made.
    A refusal of one child lets the rest of its wave finish, stops before the
    next wave, and is raised.
    """
    log = telemetry.stack_logger(logger, stack.namespace, stack.name)
    writes, restored = 0, []
    desired = await children.desired(kube, stack, operator_namespace=settings.operator_namespace)
    for wave in children.waves(desired):
        results = await asyncio.gather(
            *(_ensure(kube, child) for child in wave), return_exceptions=True
        )
        for child, result in zip(wave, results, strict=True):
            if isinstance(result, BaseException) or not result.wrote:
                continue
            writes += 1
            what = f"{child.manifest['kind']} {child.manifest['metadata']['name']}"
            if result.restored:
                restored.append(f"{what}: {', '.join(result.restored)}")
            elif result.created and observed:
                restored.append(f"{what}: recreated, it had been deleted")
            else:
                log.info("applied %s", what)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
    return writes, restored


async def _ensure(kube: KubeClient, child: children.Child) -> apply.Ensured:
    if child.create_only:
        # Another part of the operator owns its content once it exists: only a
        # deleted one is put back.
        wrote = await apply.create_absent(kube, child.manifest)
        return apply.Ensured(None, wrote=wrote, created=wrote)
    return await apply.ensure(kube, child.manifest, initial_replicas=child.initial_replicas)


async def _report_restored(kube: KubeClient, body: dict[str, Any], restored: list[str]) -> None:
    """Log and post one Event naming every child (and field) put back; nothing if none."""
    if not restored:
        return
    namespace, name, uid, _ = _meta(body)
    message = "Put back what was changed outside the operator: " + "; ".join(restored)
    telemetry.stack_logger(logger, namespace, name).info(message)
    telemetry.DRIFT_CORRECTED.inc(len(restored))
    await events.post(
        kube,
        namespace=namespace,
        name=name,
        uid=uid,
        type_="Normal",
        reason=REASON_DRIFT_CORRECTED,
        message=message,
    )


async def settle(
    kube: KubeClient,
    *,
    namespace: str,
    name: str,
    settings: Settings,
    repair: bool,
    redis_step: bool = False,
) -> Recheck | None:
    """A child changed: put back hand edits (when ``repair``), the Redis step, then the status.

    Returns when the caller settles the stack again (:func:`_recheck`: a
    managed cluster still converging or a replica still syncing, a held
    readiness drop), or None.

    ``redis_step``: the Redis StatefulSet changed (its pods became ready, a
    pod came back), which is what the cluster step waits for; it runs unless
    the stack is paused or being deleted. Any other change only refreshes
    the status, which reads the cluster and writes nothing to it.

    Does nothing for a stack whose status does not describe its current spec
    yet, or that is stalled (the pending reconcile and the stall's retry write
    those), gone, or whose spec does not parse; repairs nothing while it is
    paused or being deleted. Transient API errors propagate, so that the
    caller tries again later.
    """
    async with _locks[(namespace, name)]:
        body = await kube.get(names.API_VERSION, names.KIND, namespace, name)
        if body is None or _stalled(body) or unobserved(body):
            return None
        try:
            stack = stack_from_body(body)
        except pydantic.ValidationError:
            return None
        deleting = bool((body.get("metadata") or {}).get("deletionTimestamp"))
        if repair and not (deleting or stack.spec.paused):
            try:
                _, restored = await _apply_children(kube, stack, settings=settings, observed=True)
            except KubeError as exc:
                if transient(exc):
                    raise
                log = telemetry.stack_logger(logger, namespace, name)
                log.warning("could not put back a child changed by hand: %s", exc.message)
                restored = []
            await _report_restored(kube, body, restored)

        async def write(observed: _Observed) -> None:
            await _write_status(
                kube,
                body,
                observed=observed,
                stack=stack,
                problem=None,
                paused=stack.spec.paused,
                keep_generation=True,
            )

        if redis_step and not (deleting or stack.spec.paused):
            await _converge(kube, stack, body, write)
            try:
                await _finish_scale_in(kube, stack)
            except KubeError as exc:
                if transient(exc):
                    raise
                log = telemetry.stack_logger(logger, namespace, name)
                log.warning("could not shrink the Redis StatefulSet: %s", exc.message)
        # Only readiness changed: the spec generation this status describes stays.
        observed = await _observe(kube, stack, body=body)
        await write(observed)
        return _recheck(observed, settings)
