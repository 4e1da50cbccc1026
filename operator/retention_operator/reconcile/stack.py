"""Reconcile one RetentionStack: preflight, children, status.

Called by the kopf handlers (create, update, resume, and child events). The
order is fixed: parse, honour ``paused``, check what only the operator can
judge (Secrets, reachability), then apply children, then write status. A
problem at any step stops before any child is written, so a bad input never
deletes or changes what already runs. Each stack is reconciled by one task at
a time (a lock per stack), because child events and spec changes can race.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pydantic

from retention_operator import names, telemetry
from retention_operator.kube import KubeClient, KubeError, events
from retention_operator.model import RetentionStack, stack_from_body
from retention_operator.reconcile import apply, children, preflight
from retention_operator.reconcile.status import (
    ComponentHealth,
    Problem,
    needs_write,
    status_patch,
    workload_health,
)
from retention_operator.settings import Settings

logger = logging.getLogger(__name__)
_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

REASON_INVALID_SPEC = "InvalidSpec"
REASON_APPLY_REFUSED = "ApplyRefused"


@dataclass(frozen=True)
class Outcome:
    """What a reconcile ended with; ``retry`` asks the caller to try again later."""

    retry: bool = False
    message: str = ""
    writes: int = 0


def _meta(body: dict[str, Any]) -> tuple[str, str, str, int | None]:
    meta = body.get("metadata", {})
    return (
        meta.get("namespace", ""),
        meta.get("name", ""),
        meta.get("uid", ""),
        meta.get("generation"),
    )


async def _observe(kube: KubeClient, stack: RetentionStack) -> dict[str, ComponentHealth]:
    """Read the children's readiness (reads only)."""
    health: dict[str, ComponentHealth] = {}
    for component, (api_version, kind, name) in children.workloads(stack).items():
        live = await kube.get(api_version, kind, stack.namespace, name)
        health[component] = workload_health(live, what=f"{kind} {name}")
    redis_health = await children.redis_health(kube, stack, health.get(names.COMPONENT_REDIS))
    if redis_health is not None:
        health[names.COMPONENT_REDIS] = redis_health
    return health


async def _write_status(
    kube: KubeClient,
    body: dict[str, Any],
    *,
    components: dict[str, ComponentHealth],
    problem: Problem | None,
    paused: bool,
    keep_generation: bool = False,
) -> bool:
    """Write the status if it changed; ``keep_generation`` leaves observedGeneration as stored."""
    namespace, name, _, generation = _meta(body)
    current = body.get("status") or {}
    if keep_generation:
        generation = current.get("observedGeneration")
    patch = status_patch(
        previous=current,
        generation=generation,
        components=components,
        problem=problem,
        paused=paused,
    )
    for condition in patch["conditions"]:
        telemetry.STACK_CONDITION.labels(namespace, name, condition["type"]).set(
            1 if condition["status"] == "True" else 0
        )
    if not needs_write(current, patch):
        return False
    await kube.patch_status(names.API_VERSION, names.KIND, namespace, name, patch)
    return True


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
    components = await _observe(kube, stack) if stack is not None else {}
    wrote = await _write_status(kube, body, components=components, problem=problem, paused=False)
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
    namespace, name, _, _ = _meta(body)
    log = telemetry.stack_logger(logger, namespace, name)
    try:
        stack = stack_from_body(body)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return await _stall(
            kube, body, None, Problem(REASON_INVALID_SPEC, f"{where}: {first.get('msg', '')}")
        )
    if stack.spec.paused:
        components = await _observe(kube, stack)
        wrote = await _write_status(kube, body, components=components, problem=None, paused=True)
        return Outcome(writes=int(wrote))
    problem = await preflight.secrets_problem(kube, stack) or await preflight.reachability_problem(
        kube, stack
    )
    if problem is not None:
        return await _stall(kube, body, stack, problem)
    writes = 0
    try:
        for child in await children.desired(
            kube, stack, operator_namespace=settings.operator_namespace
        ):
            if child.create_only:
                wrote = await apply.create_absent(kube, child.manifest)
            else:
                _, wrote = await apply.ensure(
                    kube, child.manifest, initial_replicas=child.initial_replicas
                )
            if wrote:
                writes += 1
                log.info(
                    "applied %s %s", child.manifest["kind"], child.manifest["metadata"]["name"]
                )
    except KubeError as exc:
        # The API server refused a child: report it and leave everything else as is.
        return await _stall(kube, body, stack, Problem(REASON_APPLY_REFUSED, exc.message))
    components = await _observe(kube, stack)
    if await _write_status(kube, body, components=components, problem=None, paused=False):
        writes += 1
    return Outcome(writes=writes)


async def refresh_status(kube: KubeClient, *, namespace: str, name: str) -> None:
    """Re-read a stack and its children and write its status if it changed.

    Called when a child reports new readiness. Does nothing if the stack is
    gone, cannot be parsed, or is stalled (the stall's retry owns its status).
    """
    async with _locks[(namespace, name)]:
        body = await kube.get(names.API_VERSION, names.KIND, namespace, name)
        if body is None:
            return
        conditions = (body.get("status") or {}).get("conditions", [])
        if any(
            c.get("type") == names.CONDITION_STALLED and c.get("status") == "True"
            for c in conditions
        ):
            return
        try:
            stack = stack_from_body(body)
        except pydantic.ValidationError:
            return
        components = await _observe(kube, stack)
        # Only readiness changed: the spec generation this status describes stays.
        await _write_status(
            kube,
            body,
            components=components,
            problem=None,
            paused=stack.spec.paused,
            keep_generation=True,
        )
