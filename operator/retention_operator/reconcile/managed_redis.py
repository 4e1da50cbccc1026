"""The managed Redis Cluster's part of a reconcile: one write step, one read.

:func:`converge` is the reconcile step after apply (and after a change of
the StatefulSet's readiness): once every pod is ready it brings the cluster
to the shape the spec asks for (:func:`.redis_cluster.ensure_cluster`: form,
grow, heal). :func:`health` is what the status reads call; it only reads
(CLUSTER INFO, CLUSTER NODES, INFO replication), so a status refresh never
writes to a node.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from retention_operator import names, redis_cluster, telemetry
from retention_operator.builders import naming
from retention_operator.kube import KubeClient, events
from retention_operator.model import RetentionStack
from retention_operator.reconcile import preflight
from retention_operator.reconcile.status import (
    REASON_RESHARDING,
    ComponentHealth,
    workload_health,
)

logger = logging.getLogger(__name__)
Manifest = dict[str, Any]
#: Called with the cluster while a step of :func:`converge` moves slots.
Progress = Callable[[redis_cluster.ClusterHealth], Awaitable[None]]


@dataclass(frozen=True)
class Nodes:
    """The Redis pods of a stack as the cluster code wants them: ordinal order, pod-0 first."""

    addresses: list[tuple[str, int]]
    labels: list[str]
    password: str | None
    shape: redis_cluster.Shape


async def converge(
    kube: KubeClient, stack: RetentionStack, *, on_progress: Progress | None = None
) -> None:
    """Bring a managed cluster to its spec's shape once its StatefulSet is ready.

    Does nothing for an external Redis or while a pod is not ready (a later
    readiness change of the StatefulSet calls again). A formed cluster of the
    asked shape receives no writes. What a step reports worth knowing
    (nodes replaced or forgotten, moves started and finished) becomes a
    Normal Event. While slots move, and while the step waits for replicas to
    finish their sync, ``on_progress`` hears the cluster as the step has just
    read it, every two seconds or so (the caller writes the status from it).
    """
    if stack.spec.redis.managed is None:
        return
    name = naming.redis(stack.name)
    live = await kube.get("apps/v1", "StatefulSet", stack.namespace, name)
    if not workload_health(live, what=f"StatefulSet {name}").healthy:
        return
    nodes = await redis_nodes(kube, stack)
    log = telemetry.stack_logger(logger, stack.namespace, stack.name)

    async def notice(note: redis_cluster.Notice) -> None:
        await events.post(
            kube,
            namespace=stack.namespace,
            name=stack.name,
            uid=stack.metadata.uid,
            type_="Normal",
            reason=note.kind,
            message=note.message,
        )

    async def progress(health: redis_cluster.ClusterHealth) -> bool:
        assert on_progress is not None
        await on_progress(health)
        return True

    try:
        result = await redis_cluster.ensure_cluster(
            nodes=nodes.addresses,
            shards=nodes.shape.shards,
            replicas_per_shard=nodes.shape.replicas,
            password=nodes.password,
            labels=nodes.labels,
            on_notice=notice,
            on_progress=progress if on_progress is not None else None,
        )
    except ValueError as exc:
        # More pods are asked for than run (a scale-out not yet rolled out).
        log.info("Redis cluster not converged: %s", exc)
        return
    if not result.ok:
        log.info("Redis cluster not converged yet: %s", result.message)


async def pods_to_run(kube: KubeClient, stack: RetentionStack) -> int | None:
    """The StatefulSet's replicas while a scale-in is under way; None for the spec's count.

    A StatefulSet that runs more pods than the spec asks for keeps them until
    the cluster has released them (:attr:`.ClusterHealth.released`: they hold
    no slot, no staying pod replicates them, and nobody knows them), so no
    pod goes with data only it has. A pod past the count that is missing or
    does not answer keeps them too: what it holds cannot be told.
    """
    managed = stack.spec.redis.managed
    if managed is None:
        return None
    running = await _replicas(kube, stack)
    if running <= managed.pods:
        return None
    nodes = await redis_nodes(kube, stack)
    if len(nodes.addresses) < running:
        return running
    cluster = await read_cluster(nodes)
    if cluster.answering < cluster.total or not cluster.released:
        return running
    return None


async def shrink_pending(kube: KubeClient, stack: RetentionStack) -> bool:
    """True when the StatefulSet runs more Redis pods than the spec asks for."""
    managed = stack.spec.redis.managed
    return managed is not None and await _replicas(kube, stack) > managed.pods


async def _replicas(kube: KubeClient, stack: RetentionStack) -> int:
    live = await kube.get("apps/v1", "StatefulSet", stack.namespace, naming.redis(stack.name))
    return int(((live or {}).get("spec") or {}).get("replicas") or 0)


async def health(
    kube: KubeClient,
    stack: RetentionStack,
    statefulset: ComponentHealth | None,
    *,
    cluster: redis_cluster.ClusterHealth | None = None,
) -> tuple[ComponentHealth | None, redis_cluster.ClusterHealth | None]:
    """Health of the queue's Redis, and the managed cluster as its nodes report it.

    The external server: its reachability, no cluster. A managed cluster is
    healthy only when its StatefulSet is ready and the cluster has the shape
    asked for; until then the message says what it waits for, with reason
    ``Resharding`` while slots move. The cluster is read once some pod is
    ready (a master that died is reported by the others), unless the caller
    passes what a step in progress has just read. Sends no writes to any node.
    """
    external = stack.spec.redis.external
    if external is not None:
        problem = await preflight.external_redis_problem(stack)
        return ComponentHealth(None, None, problem.message if problem else None), None
    if statefulset is None or not statefulset.ready:
        return statefulset, cluster
    if cluster is None:
        cluster = await read_cluster(await redis_nodes(kube, stack))
    if not statefulset.healthy:
        return statefulset, cluster
    return cluster_component_health(statefulset, cluster), cluster


async def read_cluster(nodes: Nodes) -> redis_cluster.ClusterHealth:
    """The cluster as its nodes report it, judged against the shape asked (reads only)."""
    return await redis_cluster.cluster_health(
        nodes=nodes.addresses, password=nodes.password, shape=nodes.shape, labels=nodes.labels
    )


def cluster_component_health(
    statefulset: ComponentHealth, cluster: redis_cluster.ClusterHealth
) -> ComponentHealth:
    """The Redis component: the ready StatefulSet's counts, with what the cluster waits for."""
    if cluster.ok:
        return statefulset
    if cluster.moving:
        return ComponentHealth(
            statefulset.desired,
            statefulset.ready,
            f"resharding the Redis cluster: {cluster.moving}",
            reason=REASON_RESHARDING,
        )
    return ComponentHealth(
        statefulset.desired,
        statefulset.ready,
        f"waiting for the Redis cluster to form: {cluster.message}",
    )


async def redis_nodes(kube: KubeClient, stack: RetentionStack) -> Nodes:
    """Addresses and names of the Redis pods in ordinal order, the password, the shape."""
    managed = stack.spec.redis.managed
    assert managed is not None
    selector = f"{names.LABEL_STACK}={stack.name},{names.LABEL_COMPONENT}={names.COMPONENT_REDIS}"
    pods = await kube.list("v1", "Pod", stack.namespace, label_selector=selector)

    def ordinal(pod: Manifest) -> int:
        return int(pod["metadata"]["name"].rsplit("-", 1)[-1])

    ordered = sorted(pods, key=ordinal)
    secret = await kube.get("v1", "Secret", stack.namespace, naming.redis_auth(stack.name))
    return Nodes(
        addresses=[
            (pod.get("status", {}).get("podIP") or "", naming.REDIS_CLIENT_PORT) for pod in ordered
        ],
        labels=[pod["metadata"]["name"] for pod in ordered],
        password=_secret_value(secret, naming.REDIS_PASSWORD_KEY),
        shape=redis_cluster.Shape(shards=managed.shards, replicas=managed.replicas_per_shard),
    )


def _secret_value(secret: Manifest | None, key: str) -> str | None:
    """Decode one key of a Secret; None if the Secret or the key is absent."""
    if secret is None:
        return None
    raw = (secret.get("data") or {}).get(key)
    return base64.b64decode(raw).decode() if raw else None
