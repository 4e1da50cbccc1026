"""NetworkPolicies: Redis and PgBouncer accept traffic only from the stack's own pods (and scrapes).

Ingress only: egress (PgBouncer to PostgreSQL, the API to the world) is not
restricted here. The operator reads Redis for the backlog and forms the
cluster, so its namespace may be allowed on the Redis client port.
"""

from __future__ import annotations

from typing import Any

from retention_operator import names
from retention_operator.builders import labels, naming
from retention_operator.model import RetentionStack

# Set by the API server on every namespace (Kubernetes >= 1.22).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _pods(stack: str, component: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": labels.selector(stack, component)}}


def _app_peers(stack: str) -> list[dict[str, Any]]:
    return [_pods(stack, names.COMPONENT_API), _pods(stack, names.COMPONENT_WORKERS)]


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _policy(
    stack: RetentionStack, name: str, component: str, ingress: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": labels.object_meta(stack, name, component),
        "spec": {
            "podSelector": {"matchLabels": labels.selector(stack.name, component)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def build_redis_network_policy(
    stack: RetentionStack, *, operator_namespace: str | None = None
) -> dict[str, Any]:
    """Return the policy of the managed Redis pods.

    Allowed: the stack's API and worker pods on the client port; the Redis
    pods themselves on the client and cluster-bus ports (replication and
    gossip); when ``operator_namespace`` is given, pods of that namespace
    on the client port; and anyone on the exporter's port when it runs.
    Everything else is refused.
    """
    ingress = [
        {"from": _app_peers(stack.name), "ports": _tcp(naming.REDIS_CLIENT_PORT)},
        {
            "from": [_pods(stack.name, names.COMPONENT_REDIS)],
            "ports": _tcp(naming.REDIS_CLIENT_PORT, naming.REDIS_BUS_PORT),
        },
    ]
    if operator_namespace is not None:
        selector = {"matchLabels": {NAMESPACE_NAME_LABEL: operator_namespace}}
        ingress.append(
            {"from": [{"namespaceSelector": selector}], "ports": _tcp(naming.REDIS_CLIENT_PORT)}
        )
    if stack.spec.redis.managed is not None and stack.spec.redis.managed.exporter.enabled:
        # From anywhere: Prometheus runs wherever its owners put it. The exporter
        # serves figures only (redis_exporter redacts every secret config value).
        ingress.append({"ports": _tcp(naming.REDIS_EXPORTER_PORT)})
    return _policy(stack, naming.redis(stack.name), names.COMPONENT_REDIS, ingress)


def _pgbouncer_ingress(stack: RetentionStack) -> list[dict[str, Any]]:
    """The stack's API and workers on PgBouncer's port; anyone on the exporter's, if it runs."""
    ingress: list[dict[str, Any]] = [
        {"from": _app_peers(stack.name), "ports": _tcp(naming.PGBOUNCER_PORT)}
    ]
    if stack.spec.pgbouncer.exporter.enabled:
        ingress.append({"ports": _tcp(naming.PGBOUNCER_EXPORTER_PORT)})
    return ingress


def build_pgbouncer_network_policy(stack: RetentionStack) -> dict[str, Any]:
    """Return the policy of the PgBouncer pods: the stack's API and workers (and scrapes)."""
    ingress = _pgbouncer_ingress(stack)
    return _policy(stack, naming.pgbouncer(stack.name), names.COMPONENT_PGBOUNCER, ingress)


def build_pgbouncer_ro_network_policy(stack: RetentionStack) -> dict[str, Any]:
    """Return the policy of the read pool's pods: the same as the primary pool's."""
    ingress = _pgbouncer_ingress(stack)
    return _policy(stack, naming.pgbouncer_ro(stack.name), names.COMPONENT_PGBOUNCER_RO, ingress)
