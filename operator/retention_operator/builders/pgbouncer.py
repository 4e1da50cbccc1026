"""PgBouncer in front of the external PostgreSQL: config, Deployment, Service, PDB.

pgbouncer.ini lives in a ConfigMap and holds no secret. The auth file
(``userlist.txt``) is written at pod start by an init container from the
credentials Secret (through ``secretKeyRef``) into a memory-backed volume, so
the password never sits in a ConfigMap or on the node's disk. A hash of the
config on the pod template rolls the pods when the config changes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from retention_operator import names
from retention_operator.builders import labels, naming, pods, security
from retention_operator.model import RetentionStack

CONFIG_DIR = "/etc/pgbouncer/config"
AUTH_DIR = "/etc/pgbouncer/auth"
CONFIG_FILE = "pgbouncer.ini"
AUTH_FILE = "userlist.txt"

# Writes one userlist line, '"user" "password"', doubling any '"' as the format asks.
_WRITE_USERLIST = (
    "set -eu; umask 077; "
    'escaped=$(printf %s "$PGBOUNCER_PASSWORD" | sed \'s/"/""/g\'); '
    f'printf \'"%s" "%s"\\n\' "$PGBOUNCER_USER" "$escaped" > {AUTH_DIR}/{AUTH_FILE}'
)


def render_pgbouncer_ini(stack: RetentionStack) -> str:
    """Return pgbouncer.ini: one database entry and the pool settings of the spec."""
    spec = stack.spec.pgbouncer
    db = spec.database
    lines = [
        "[databases]",
        f"{db.name} = host={db.host} port={db.port} dbname={db.name}",
        "",
        "[pgbouncer]",
        "listen_addr = 0.0.0.0",
        f"listen_port = {naming.PGBOUNCER_PORT}",
        "unix_socket_dir =",
        "auth_type = scram-sha-256",
        f"auth_file = {AUTH_DIR}/{AUTH_FILE}",
        f"pool_mode = {spec.pool_mode}",
        f"default_pool_size = {spec.default_pool_size}",
        f"max_client_conn = {spec.max_client_conn}",
        "ignore_startup_parameters = extra_float_digits",
        "server_tls_sslmode = prefer",
    ]
    return "\n".join(lines) + "\n"


def config_hash(stack: RetentionStack) -> str:
    """Return a short, stable hash of pgbouncer.ini (the pod template annotation)."""
    return hashlib.sha256(render_pgbouncer_ini(stack).encode()).hexdigest()[:16]


def _meta(stack: RetentionStack, name: str) -> dict[str, Any]:
    return labels.object_meta(stack, name, names.COMPONENT_PGBOUNCER)


def build_pgbouncer_config_map(stack: RetentionStack) -> dict[str, Any]:
    """Return the ConfigMap with pgbouncer.ini (no credentials)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(stack, naming.pgbouncer_config(stack.name)),
        "data": {CONFIG_FILE: render_pgbouncer_ini(stack)},
    }


def _auth_init_container(stack: RetentionStack) -> dict[str, Any]:
    spec = stack.spec.pgbouncer
    creds = spec.credentials_secret_ref
    return {
        "name": "userlist",
        "image": spec.image,
        "command": ["/bin/sh", "-c", _WRITE_USERLIST],
        "env": [
            {"name": "PGBOUNCER_USER", "value": spec.database.user},
            {
                "name": "PGBOUNCER_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": creds.name, "key": creds.password_key}},
            },
        ],
        "securityContext": security.container_security_context(),
        "volumeMounts": [{"name": "auth", "mountPath": AUTH_DIR}],
    }


def _container(stack: RetentionStack) -> dict[str, Any]:
    spec = stack.spec.pgbouncer
    return {
        "name": names.COMPONENT_PGBOUNCER,
        "image": spec.image,
        "command": ["pgbouncer", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        "ports": [{"name": "pgbouncer", "containerPort": naming.PGBOUNCER_PORT, "protocol": "TCP"}],
        "resources": pods.resources(spec.resources),
        "readinessProbe": pods.tcp_probe("pgbouncer", period=5),
        "livenessProbe": pods.tcp_probe("pgbouncer", period=15),
        "securityContext": security.container_security_context(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
        ],
    }


def build_pgbouncer_deployment(stack: RetentionStack) -> dict[str, Any]:
    """Return the PgBouncer Deployment (``spec.pgbouncer.replicas``, not autoscaled).

    The pod template carries ``names.ANNOTATION_CONFIG_HASH`` so that a change
    of pgbouncer.ini rolls the pods. A password rotated in the Secret is picked
    up by the next rollout, not at once.
    """
    spec = stack.spec.pgbouncer
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(stack, naming.pgbouncer(stack.name)),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": labels.selector(stack.name, names.COMPONENT_PGBOUNCER)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": {
                    "labels": labels.labels(stack.name, names.COMPONENT_PGBOUNCER),
                    "annotations": {names.ANNOTATION_CONFIG_HASH: config_hash(stack)},
                },
                "spec": {
                    "securityContext": security.pod_security_context(),
                    "automountServiceAccountToken": False,
                    "initContainers": [_auth_init_container(stack)],
                    "containers": [_container(stack)],
                    "volumes": [
                        {
                            "name": "config",
                            "configMap": {"name": naming.pgbouncer_config(stack.name)},
                        },
                        pods.empty_dir("auth", memory=True),
                    ],
                },
            },
        },
    }


def build_pgbouncer_service(stack: RetentionStack) -> dict[str, Any]:
    """Return the ClusterIP Service the API and workers connect to (port 6432)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(stack, naming.pgbouncer(stack.name)),
        "spec": {
            "type": "ClusterIP",
            "selector": labels.selector(stack.name, names.COMPONENT_PGBOUNCER),
            "ports": [
                {
                    "name": "pgbouncer",
                    "port": naming.PGBOUNCER_PORT,
                    "targetPort": "pgbouncer",
                    "protocol": "TCP",
                }
            ],
        },
    }


def build_pgbouncer_pdb(stack: RetentionStack) -> dict[str, Any]:
    """Return the PDB: one PgBouncer pod at a time may be evicted."""
    return pods.pod_disruption_budget(
        _meta(stack, naming.pgbouncer(stack.name)),
        labels.selector(stack.name, names.COMPONENT_PGBOUNCER),
    )
