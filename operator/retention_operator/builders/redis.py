"""The managed Redis Cluster: StatefulSet, Services, config, auth Secret and PDB.

Only for ``spec.redis.managed``; every builder raises ValueError for a stack
with an external Redis (the caller builds none of these then). Forming the
cluster (slots, replicas) is the bootstrap's job, not the manifests'.

The password never appears in the ConfigMap, the pod spec or the status: the
auth Secret carries it both as a plain key (for clients) and as a redis.conf
fragment that the server includes from a mounted Secret volume.

Redis never evicts (``noeviction``: an evicted entry is a lost job), and with
a memory limit on the container its ``maxmemory`` is a share of that limit, so
a queue that outgrows it makes Redis refuse writes (the API answers 503)
instead of growing until the kernel kills the container.
"""

from __future__ import annotations

from typing import Any

from retention_operator import names
from retention_operator.builders import labels, naming, pods, quantity, security
from retention_operator.model import ManagedRedis, RetentionStack

CONF_DIR = "/etc/redis/conf"
AUTH_DIR = "/etc/redis/auth"
DATA_DIR = "/data"
CONF_FILE = "redis.conf"
DATA_VOLUME = "data"
MAXMEMORY_SHARE = 0.75
"""The part of the container's memory limit Redis may fill with data. The rest is
for what used_memory does not count but the cgroup does: allocator fragmentation,
client and replication buffers, and the copy-on-write pages of the fork that
rewrites the append-only file or serves a replica's full sync."""


def _managed(stack: RetentionStack) -> ManagedRedis:
    managed = stack.spec.redis.managed
    if managed is None:
        raise ValueError(f"stack {stack.namespace}/{stack.name} uses an external Redis")
    return managed


def _meta(stack: RetentionStack, name: str) -> dict[str, Any]:
    return labels.object_meta(stack, name, names.COMPONENT_REDIS)


def _quote(value: str) -> str:
    """Quote a value for redis.conf (double quotes; backslash and quote escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render_redis_conf() -> str:
    """Return redis.conf for cluster mode; it includes the auth fragment from the Secret."""
    lines = [
        f"port {naming.REDIS_CLIENT_PORT}",
        "bind * -::*",
        "protected-mode no",
        "cluster-enabled yes",
        f"cluster-config-file {DATA_DIR}/nodes.conf",
        "cluster-node-timeout 5000",
        # Redirects and CLUSTER SLOTS name nodes by IP: the cluster's gossip learns a
        # restarted pod's new IP within seconds, while DNS (CoreDNS caches for 30 s)
        # still answered a recreated stack's old IPs ("No route to host").
        # The hostname is still announced, so each node can be told by its pod.
        "cluster-preferred-endpoint-type ip",
        # An evicted entry is a lost job: at maxmemory, writes are refused instead.
        "maxmemory-policy noeviction",
        "appendonly yes",
        "appendfsync everysec",
        f"dir {DATA_DIR}",
        f"include {AUTH_DIR}/{naming.REDIS_AUTH_CONF_KEY}",
    ]
    return "\n".join(lines) + "\n"


def build_redis_config_map(stack: RetentionStack) -> dict[str, Any]:
    """Return the ConfigMap with redis.conf (no secrets)."""
    _managed(stack)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(stack, naming.redis_config(stack.name)),
        "data": {CONF_FILE: render_redis_conf()},
    }


def build_redis_auth_secret(stack: RetentionStack, *, password: str) -> dict[str, Any]:
    """Return the Secret with the Redis password.

    The caller generates ``password`` once, on first creation, and reads it
    back from the existing Secret afterwards: rebuilding with a new password
    would lock the running cluster's clients out. Raises ValueError for an
    empty password.
    """
    _managed(stack)
    if not password:
        raise ValueError("the Redis password must not be empty")
    fragment = f"requirepass {_quote(password)}\nmasterauth {_quote(password)}\n"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(stack, naming.redis_auth(stack.name)),
        "type": "Opaque",
        "stringData": {naming.REDIS_PASSWORD_KEY: password, naming.REDIS_AUTH_CONF_KEY: fragment},
    }


def _ports() -> list[dict[str, Any]]:
    return [
        {"name": "redis", "port": naming.REDIS_CLIENT_PORT, "targetPort": "redis"},
        {"name": "cluster-bus", "port": naming.REDIS_BUS_PORT, "targetPort": "cluster-bus"},
    ]


def build_redis_headless_service(stack: RetentionStack) -> dict[str, Any]:
    """Return the headless Service that names each pod ``<pod>.<stack>-redis-headless``.

    Not-ready pods are published too: cluster nodes must find each other
    before the cluster is formed and reports ready.
    """
    _managed(stack)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(stack, naming.redis_headless(stack.name)),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": labels.selector(stack.name, names.COMPONENT_REDIS),
            "ports": _ports(),
        },
    }


def build_redis_service(stack: RetentionStack) -> dict[str, Any]:
    """Return the client Service: a seed address for cluster clients."""
    _managed(stack)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(stack, naming.redis(stack.name)),
        "spec": {
            "type": "ClusterIP",
            "selector": labels.selector(stack.name, names.COMPONENT_REDIS),
            "ports": [{"name": "redis", "port": naming.REDIS_CLIENT_PORT, "targetPort": "redis"}],
        },
    }


def build_redis_pdb(stack: RetentionStack) -> dict[str, Any]:
    """Return the PDB: one Redis pod at a time, so a shard never loses both copies."""
    _managed(stack)
    return pods.pod_disruption_budget(
        _meta(stack, naming.redis(stack.name)),
        labels.selector(stack.name, names.COMPONENT_REDIS),
    )


def maxmemory(managed: ManagedRedis) -> int | None:
    """Redis's maxmemory in bytes: MAXMEMORY_SHARE of the memory limit; None without one.

    At least 1: Redis reads ``maxmemory 0`` as no bound at all.
    """
    limit = managed.resources.limits.get("memory")
    if limit is None:
        return None
    return max(1, int(quantity.to_bytes(limit) * MAXMEMORY_SHARE))


def _container(stack: RetentionStack, managed: ManagedRedis) -> dict[str, Any]:
    headless = naming.service_host(naming.redis_headless(stack.name), stack.namespace)
    # On the command line, not in the ConfigMap: it changes with the limit, in the
    # same pod template, so a restarted pod never reads a ConfigMap not yet updated.
    memory = maxmemory(managed)
    sized = [] if memory is None else ["--maxmemory", str(memory)]
    return {
        "name": names.COMPONENT_REDIS,
        "image": managed.image,
        "command": [
            "redis-server",
            f"{CONF_DIR}/{CONF_FILE}",
            # $(POD_NAME) is expanded by the kubelet from the env below.
            "--cluster-announce-hostname",
            f"$(POD_NAME).{headless}",
            *sized,
        ],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [
            {"name": "redis", "containerPort": naming.REDIS_CLIENT_PORT, "protocol": "TCP"},
            {"name": "cluster-bus", "containerPort": naming.REDIS_BUS_PORT, "protocol": "TCP"},
        ],
        "resources": pods.resources(managed.resources),
        "readinessProbe": pods.tcp_probe("redis", period=5),
        "livenessProbe": pods.tcp_probe("redis", period=15),
        "startupProbe": pods.startup_probe("redis"),
        "securityContext": security.container_security_context(),
        "volumeMounts": [
            {"name": DATA_VOLUME, "mountPath": DATA_DIR},
            {"name": "config", "mountPath": CONF_DIR, "readOnly": True},
            {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
        ],
    }


def _exporter_container(stack: RetentionStack, managed: ManagedRedis) -> dict[str, Any]:
    """redis_exporter for the server of its own pod; the password comes from the auth Secret.

    Server figures only (memory against maxmemory, clients, commands): no key or
    stream checks. redis_exporter 1.45 asks a key of its own server even with
    ``--is-cluster``, so every pod that does not hold the key's slot would log a
    MOVED error on every scrape; the queue's own figures come from the operator
    (``retention_stack_backlog``), which reads each stream where its slot lives.
    """
    exporter = managed.exporter
    return {
        "name": naming.EXPORTER_CONTAINER,
        "image": exporter.image,
        "args": [
            f"--redis.addr=redis://127.0.0.1:{naming.REDIS_CLIENT_PORT}",
            f"--web.listen-address=:{naming.REDIS_EXPORTER_PORT}",
            "--log-format=json",
        ],
        "env": [
            {
                "name": "REDIS_PASSWORD",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": naming.redis_auth(stack.name),
                        "key": naming.REDIS_PASSWORD_KEY,
                    }
                },
            }
        ],
        "ports": [
            {
                "name": naming.REDIS_EXPORTER_PORT_NAME,
                "containerPort": naming.REDIS_EXPORTER_PORT,
                "protocol": "TCP",
            }
        ],
        "resources": pods.resources(exporter.resources),
        "securityContext": security.container_security_context(),
    }


def _volume_claim(managed: ManagedRedis) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": managed.storage.size}},
    }
    if managed.storage.storage_class_name is not None:
        spec["storageClassName"] = managed.storage.storage_class_name
    return {"metadata": {"name": DATA_VOLUME}, "spec": spec}


def build_redis_statefulset(stack: RetentionStack, *, pods: int | None = None) -> dict[str, Any]:
    """Return the StatefulSet of ``shards * (1 + replicasPerShard)`` Redis pods.

    ``pods`` overrides that count while pods past it still hold data of the
    cluster (slots, or a master of a staying replica): a scale-in shrinks
    the StatefulSet only after they have left the cluster.

    Each pod has its own volume. When the StatefulSet is deleted its volumes
    are kept if ``retainOnDelete`` is true (the default) and deleted with it
    otherwise; volumes of pods scaled away are always kept, since their slots
    may not have moved yet.
    """
    managed = _managed(stack)
    when_deleted = "Retain" if managed.retain_on_delete else "Delete"
    pod_spec = {
        "securityContext": security.pod_security_context(security.REDIS_UID),
        "automountServiceAccountToken": False,
        "containers": [
            _container(stack, managed),
            *([_exporter_container(stack, managed)] if managed.exporter.enabled else []),
        ],
        "volumes": [
            {"name": "config", "configMap": {"name": naming.redis_config(stack.name)}},
            {
                "name": "auth",
                "secret": {"secretName": naming.redis_auth(stack.name), "defaultMode": 0o400},
            },
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(stack, naming.redis(stack.name)),
        "spec": {
            "replicas": managed.pods if pods is None else pods,
            "serviceName": naming.redis_headless(stack.name),
            # Cluster nodes start together; the bootstrap forms the cluster.
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels.selector(stack.name, names.COMPONENT_REDIS)},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": when_deleted,
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": labels.labels(stack.name, names.COMPONENT_REDIS)},
                "spec": pod_spec,
            },
            "volumeClaimTemplates": [_volume_claim(managed)],
        },
    }
