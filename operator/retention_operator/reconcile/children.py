"""The children of a stack, in the order they are applied, and which ones report readiness.

Composes the pure builders with the two facts only the cluster knows: whether
the generated Redis password Secret already exists (it is created once and
never rewritten) and how many replicas a new scaled Deployment starts with.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from retention_operator import names
from retention_operator.builders import (
    api,
    monitoring,
    naming,
    networkpolicy,
    pgbouncer,
    redis,
    workers,
)
from retention_operator.builders.ownership import owner_reference, set_owner_reference
from retention_operator.kube import KubeClient
from retention_operator.model import RetentionStack
from retention_operator.reconcile import managed_redis

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Child:
    """A manifest to apply; ``initial_replicas`` is set for the autoscaled Deployments.

    ``create_only`` children are created when absent and never updated here,
    because another part of the operator owns their content once they exist.
    """

    manifest: Manifest
    initial_replicas: int | None = None
    create_only: bool = False


def workloads(stack: RetentionStack) -> dict[str, tuple[str, str, str]]:
    """Component -> (apiVersion, kind, name) of the workload whose readiness it reports."""
    out = {
        names.COMPONENT_API: ("apps/v1", "Deployment", naming.api(stack.name)),
        names.COMPONENT_WORKERS: ("apps/v1", "Deployment", naming.workers(stack.name)),
        names.COMPONENT_PGBOUNCER: ("apps/v1", "Deployment", naming.pgbouncer(stack.name)),
    }
    if stack.spec.redis.managed is not None:
        out[names.COMPONENT_REDIS] = ("apps/v1", "StatefulSet", naming.redis(stack.name))
    if stack.spec.pgbouncer.read_replicas:
        ro = ("apps/v1", "Deployment", naming.pgbouncer_ro(stack.name))
        out[names.COMPONENT_PGBOUNCER_RO] = ro
    return out


async def _redis_children(kube: KubeClient, stack: RetentionStack) -> list[Manifest]:
    if stack.spec.redis.managed is None:
        return []
    # The password is generated once; an existing Secret is never rewritten,
    # so a restart or a spec change never rotates it under running pods.
    existing = await kube.get("v1", "Secret", stack.namespace, naming.redis_auth(stack.name))
    out: list[Manifest] = []
    if existing is None:
        out.append(redis.build_redis_auth_secret(stack, password=secrets.token_urlsafe(32)))
    out += [
        redis.build_redis_config_map(stack),
        redis.build_redis_headless_service(stack),
        redis.build_redis_service(stack),
        await _redis_statefulset(kube, stack),
        redis.build_redis_pdb(stack),
    ]
    return out


async def _redis_statefulset(kube: KubeClient, stack: RetentionStack) -> Manifest:
    return redis.build_redis_statefulset(stack, pods=await managed_redis.pods_to_run(kube, stack))


async def redis_statefulset(kube: KubeClient, stack: RetentionStack) -> Child:
    """The managed Redis StatefulSet alone, as :func:`desired` has it (a scale-in's last step)."""
    manifest = await _redis_statefulset(kube, stack)
    return Child(set_owner_reference(manifest, owner_reference(stack.metadata)))


async def desired(
    kube: KubeClient, stack: RetentionStack, *, operator_namespace: str | None
) -> list[Child]:
    """Return every child of the stack, owner references set, in apply order."""
    owner = owner_reference(stack.metadata)
    manifests: list[Child] = [
        Child(pgbouncer.build_pgbouncer_config_map(stack)),
        Child(pgbouncer.build_pgbouncer_deployment(stack)),
        Child(pgbouncer.build_pgbouncer_service(stack)),
        Child(pgbouncer.build_pgbouncer_pdb(stack)),
        *(Child(m, create_only=m["kind"] == "ConfigMap") for m in pgbouncer.build_read_pool(stack)),
    ]
    manifests += [Child(m) for m in await _redis_children(kube, stack)]
    manifests += [
        Child(
            api.build_api_deployment(stack, include_replicas=False),
            initial_replicas=stack.spec.api.min_replicas,
        ),
        Child(api.build_api_service(stack)),
        Child(
            workers.build_workers_deployment(stack, include_replicas=False),
            initial_replicas=stack.spec.workers.min_replicas,
        ),
    ]
    manifests += [
        # The operator reads the queue's backlog from Redis, so its namespace is admitted.
        Child(
            networkpolicy.build_redis_network_policy(stack, operator_namespace=operator_namespace)
        ),
        Child(networkpolicy.build_pgbouncer_network_policy(stack)),
    ]
    if stack.spec.pgbouncer.read_replicas:
        manifests.append(Child(networkpolicy.build_pgbouncer_ro_network_policy(stack)))
    if stack.spec.monitoring.pod_monitor.enabled and await kube.serves(
        names.MONITORING_API_VERSION, names.KIND_POD_MONITOR
    ):
        # Prometheus Operator's CRDs are installed: have the stack's pods scraped.
        manifests.append(Child(monitoring.build_pod_monitor(stack)))
    # The read pool's ConfigMap follows replication lag between reconciles: the
    # read pool loop owns it once it exists (a reconcile would undo its changes).
    return [
        Child(set_owner_reference(c.manifest, owner), c.initial_replicas, c.create_only)
        for c in manifests
    ]


# Kinds whose objects start pods: applied after everything those pods use or are
# guarded by (ConfigMaps, Secrets, Services, PDBs, NetworkPolicies).
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})


def waves(children: list[Child]) -> list[list[Child]]:
    """The children in two groups to apply one after the other, each all at once.

    First what pods need or are fenced by, so that no pod starts before its
    configuration and its NetworkPolicy exist; then the workloads. Within a
    group nothing depends on anything else, so a stack costs two round trips
    (and one for the first replicas) instead of one per child.
    """
    first = [c for c in children if c.manifest["kind"] not in WORKLOAD_KINDS]
    second = [c for c in children if c.manifest["kind"] in WORKLOAD_KINDS]
    return [group for group in (first, second) if group]
