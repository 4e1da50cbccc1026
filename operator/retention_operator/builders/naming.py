"""Names of the objects a stack owns, derived from the stack's name.

The reconciler, the autoscaler and the Redis bootstrap find children by these
names, so they are defined here once. ``model.MAX_STACK_NAME_LENGTH`` keeps the
longest of them (with pod ordinals and revision hashes) within 63 characters.
"""

from __future__ import annotations

from retention_operator import names

REDIS_CLIENT_PORT = 6379
REDIS_BUS_PORT = 16379
PGBOUNCER_PORT = 6432

API_HTTP_PORT_NAME = "http"
"""Name of the API container's port; it serves /metrics too."""
WORKERS_METRICS_PORT_NAME = "metrics"
"""Name of the worker container's /metrics port."""
EXPORTER_CONTAINER = "exporter"
"""Name of an exporter sidecar's container (Redis's and PgBouncer's)."""
REDIS_EXPORTER_PORT = 9121
REDIS_EXPORTER_PORT_NAME = "redis-metrics"
"""Name of the Redis exporter's /metrics port (redis_exporter's own default port)."""
PGBOUNCER_EXPORTER_PORT = 9127
PGBOUNCER_EXPORTER_PORT_NAME = "pgb-metrics"
"""Name of PgBouncer's exporter /metrics port (the exporters' usual port)."""

REDIS_PASSWORD_KEY = "password"
"""Key of the password in the managed Redis auth Secret."""
REDIS_AUTH_CONF_KEY = "auth.conf"
"""Key of the ``requirepass``/``masterauth`` config fragment in the same Secret."""


def api(stack: str) -> str:
    """Name of the API Deployment and Service."""
    return f"{stack}-{names.COMPONENT_API}"


def workers(stack: str) -> str:
    """Name of the worker Deployment."""
    return f"{stack}-{names.COMPONENT_WORKERS}"


def redis(stack: str) -> str:
    """Name of the Redis StatefulSet, its client Service, PDB and NetworkPolicy."""
    return f"{stack}-{names.COMPONENT_REDIS}"


def redis_headless(stack: str) -> str:
    """Name of the headless Service that gives each Redis pod a DNS name."""
    return f"{stack}-{names.COMPONENT_REDIS}-headless"


def redis_config(stack: str) -> str:
    """Name of the ConfigMap with redis.conf (no secrets in it)."""
    return f"{stack}-{names.COMPONENT_REDIS}-config"


def redis_auth(stack: str) -> str:
    """Name of the Secret with the managed Redis password."""
    return f"{stack}-{names.COMPONENT_REDIS}-auth"


def pgbouncer(stack: str) -> str:
    """Name of the PgBouncer Deployment, Service, PDB and NetworkPolicy."""
    return f"{stack}-{names.COMPONENT_PGBOUNCER}"


def pgbouncer_config(stack: str) -> str:
    """Name of the ConfigMap with pgbouncer.ini."""
    return f"{stack}-{names.COMPONENT_PGBOUNCER}-config"


def pgbouncer_ro(stack: str) -> str:
    """Name of the read pool's Deployment, Service, PDB and NetworkPolicy."""
    return f"{stack}-{names.COMPONENT_PGBOUNCER_RO}"


def pgbouncer_ro_config(stack: str) -> str:
    """Name of the ConfigMap with the read pool's pgbouncer.ini."""
    return f"{stack}-{names.COMPONENT_PGBOUNCER_RO}-config"


def service_host(service: str, namespace: str) -> str:
    """In-cluster DNS name of a Service."""
    return f"{service}.{namespace}.svc"


def pod_monitor(stack: str) -> str:
    """Name of the stack's PodMonitor: the stack's own, since it covers every component."""
    return stack
