"""PgBouncer in front of the external PostgreSQL: config, Deployment, Service, PDB.

Two pools share these builders: the primary pool (``<stack>-pgbouncer``), and,
when ``spec.pgbouncer.readReplicas`` is set, the read pool
(``<stack>-pgbouncer-ro``) whose one database entry lists the replicas that
are in the read pool (the primary when none is).

pgbouncer.ini lives in a ConfigMap and holds no secret. The credentials
Secret is mounted as a file; the container's start script (:data:`RUN_SCRIPT`)
writes the auth file (``userlist.txt``) from it into a memory-backed volume,
starts PgBouncer, passes a stop signal on as SIGINT (1.18's draining
shutdown; SIGTERM is its fast exit), and sends it SIGHUP whenever the mounted
config or password changes, so that a rotated password or a replica leaving the read pool is
taken up by a reload, which keeps every client connection. A hash of the
config on the pod template still rolls the pods on a spec change; the read
pool's membership is left out of that hash, so it never rolls them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from retention_operator import names
from retention_operator.builders import database, labels, naming, pods, security
from retention_operator.model import ReadReplica, RetentionStack

CONFIG_DIR = "/etc/pgbouncer/config"
AUTH_DIR = "/etc/pgbouncer/auth"
CREDENTIALS_DIR = "/etc/pgbouncer/credentials"
CA_DIR = "/etc/pgbouncer/ca"
CLIENT_TLS_DIR = "/etc/pgbouncer/client-tls"
CONFIG_FILE = "pgbouncer.ini"
AUTH_FILE = "userlist.txt"
PASSWORD_FILE = "password"
CA_FILE = "ca.crt"
EXPORTER_CONFIG_FILE = "exporter.yml"
PASSFILE = "pgpass"

RUN_SCRIPT = r"""set -eu
render() {
  umask 077
  escaped=$(sed 's/"/""/g' "$PGBOUNCER_PASSWORD_FILE")
  printf '"%s" "%s"\n' "$PGBOUNCER_USER" "$escaped" > "$PGBOUNCER_AUTH_FILE.new"
  mv "$PGBOUNCER_AUTH_FILE.new" "$PGBOUNCER_AUTH_FILE"
  if [ -n "${PGBOUNCER_PASSFILE:-}" ]; then
    # libpq's passfile for the exporter: backslash and colon escaped, any host and port.
    escaped=$(sed 's/\\/\\\\/g; s/:/\\:/g' "$PGBOUNCER_PASSWORD_FILE")
    printf '*:*:pgbouncer:%s:%s\n' "$PGBOUNCER_USER" "$escaped" > "$PGBOUNCER_PASSFILE.new"
    mv "$PGBOUNCER_PASSFILE.new" "$PGBOUNCER_PASSFILE"
  fi
}
state() { cat "$PGBOUNCER_CONFIG" "$PGBOUNCER_PASSWORD_FILE" | cksum; }
render
seen=$(state)
"${PGBOUNCER_BIN:-pgbouncer}" "$PGBOUNCER_CONFIG" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null; wait "$pid" || true; exit 0' TERM INT
while kill -0 "$pid" 2>/dev/null; do
  sleep "${PGBOUNCER_RELOAD_CHECK_SECONDS:-1}"
  now=$(state)
  if [ "$now" != "$seen" ]; then
    render
    kill -HUP "$pid"
    seen=$now
    echo "reloaded: config or password changed"
  fi
done
wait "$pid"
"""
"""The PgBouncer container's entry point (``/bin/sh -c``).

Reads ``PGBOUNCER_CONFIG``, ``PGBOUNCER_PASSWORD_FILE``, ``PGBOUNCER_AUTH_FILE``,
``PGBOUNCER_USER`` and optionally ``PGBOUNCER_BIN``; the services tests run
this same script on the host against a real PgBouncer.
"""


def _pool_names(stack: RetentionStack, *, read_only: bool) -> tuple[str, str, str]:
    """(component, object name, ConfigMap name) of one pool."""
    if read_only:
        return (
            names.COMPONENT_PGBOUNCER_RO,
            naming.pgbouncer_ro(stack.name),
            naming.pgbouncer_ro_config(stack.name),
        )
    return (
        names.COMPONENT_PGBOUNCER,
        naming.pgbouncer(stack.name),
        naming.pgbouncer_config(stack.name),
    )


def _database_line(stack: RetentionStack, servers: list[ReadReplica] | None) -> str:
    """The [databases] entry: the primary, or the given replicas (round robin, one port)."""
    db = stack.spec.pgbouncer.database
    if not servers:
        return f"{db.name} = host={db.host} port={db.port} dbname={db.name}"
    hosts = ",".join(server.host for server in servers)
    return f"{db.name} = host={hosts} port={servers[0].port} dbname={db.name}"


def _tls_lines(stack: RetentionStack) -> list[str]:
    tls = stack.spec.pgbouncer.tls
    lines = [f"server_tls_sslmode = {database.server_sslmode(stack.spec.pgbouncer)}"]
    if tls.ca is not None:
        lines.append(f"server_tls_ca_file = {CA_DIR}/{CA_FILE}")
    if tls.client is not None:
        lines += [
            f"client_tls_sslmode = {tls.client.sslmode}",
            f"client_tls_cert_file = {CLIENT_TLS_DIR}/tls.crt",
            f"client_tls_key_file = {CLIENT_TLS_DIR}/tls.key",
        ]
    return lines


def _render(stack: RetentionStack, database_line: str) -> str:
    spec = stack.spec.pgbouncer
    lines = [
        "[databases]",
        database_line,
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
        # After a failed server login PgBouncer fails every client that needs a new
        # server connection until it tries again: 15 s by default, which a password
        # rotation (the database first, the Secret a moment later) turned into errors.
        "server_login_retry = 1",
        *_tls_lines(stack),
    ]
    if spec.exporter.enabled:
        # The exporter reads SHOW POOLS, STATS, DATABASES and LISTS on the admin console
        # as the database user: read-only figures, no admin command.
        lines.append(f"stats_users = {spec.database.user}")
    return "\n".join(lines) + "\n"


def render_pgbouncer_ini(stack: RetentionStack) -> str:
    """Return the primary pool's pgbouncer.ini: the database entry and the pool settings."""
    return _render(stack, _database_line(stack, None))


def render_pgbouncer_ro_ini(stack: RetentionStack, in_pool: list[ReadReplica]) -> str:
    """Return the read pool's pgbouncer.ini, serving from ``in_pool`` (the primary if empty).

    ``in_pool`` is the part of ``spec.pgbouncer.readReplicas`` whose lag is
    within bounds, as ``status.pgbouncer`` records it (see :func:`replicas_in_pool`).
    """
    return _render(stack, _database_line(stack, in_pool))


def render_exporter_config(stack: RetentionStack) -> str:
    """Return the exporter's config: its listener and this pod's PgBouncer, no password.

    libpq reads the password from the passfile the PgBouncer container renders
    next to the auth file (:data:`RUN_SCRIPT`), at every connection: a rotated
    password reaches the exporter with PgBouncer's own reload.
    """
    user = stack.spec.pgbouncer.database.user
    dsn = (
        f"postgresql://{user}@127.0.0.1:{naming.PGBOUNCER_PORT}/pgbouncer"
        f"?passfile={AUTH_DIR}/{PASSFILE}"
    )
    lines = [
        "exporter_host: 0.0.0.0",
        f"exporter_port: {naming.PGBOUNCER_EXPORTER_PORT}",
        "pgbouncers:",
        f"  - dsn: {json.dumps(dsn)}",
        "    connect_timeout: 2",
    ]
    return "\n".join(lines) + "\n"


def _config_data(stack: RetentionStack, ini: str) -> dict[str, str]:
    data = {CONFIG_FILE: ini}
    if stack.spec.pgbouncer.exporter.enabled:
        data[EXPORTER_CONFIG_FILE] = render_exporter_config(stack)
    return data


def replicas_in_pool(stack: RetentionStack) -> list[ReadReplica]:
    """Return the spec's read replicas that ``status.pgbouncer`` marks as in the read pool.

    A replica the status does not mention yet (never measured) is out: reads
    go to the primary until the operator has seen the replica keep up.
    """
    status = stack.status.pgbouncer if stack.status is not None else None
    if status is None:
        return []
    inside = {(r.host, r.port) for r in status.read_replicas if r.in_read_pool}
    return [r for r in stack.spec.pgbouncer.read_replicas if (r.host, r.port) in inside]


def config_hash(stack: RetentionStack, *, read_only: bool = False) -> str:
    """Return a short, stable hash of the pool's settings (the pod template annotation).

    For the read pool the ini is hashed with every replica listed, so a change
    of membership (a reload) does not change the hash (a rollout).
    """
    if read_only:
        text = render_pgbouncer_ro_ini(stack, list(stack.spec.pgbouncer.read_replicas))
    else:
        text = render_pgbouncer_ini(stack)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _meta(stack: RetentionStack, *, read_only: bool) -> dict[str, Any]:
    component, name, _ = _pool_names(stack, read_only=read_only)
    return labels.object_meta(stack, name, component)


def build_pgbouncer_config_map(stack: RetentionStack) -> dict[str, Any]:
    """Return the primary pool's ConfigMap with pgbouncer.ini (no credentials)."""
    component, _, config = _pool_names(stack, read_only=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": labels.object_meta(stack, config, component),
        "data": _config_data(stack, render_pgbouncer_ini(stack)),
    }


def build_pgbouncer_ro_config_map(stack: RetentionStack) -> dict[str, Any]:
    """Return the read pool's ConfigMap, its database entry from :func:`replicas_in_pool`."""
    component, _, config = _pool_names(stack, read_only=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": labels.object_meta(stack, config, component),
        "data": _config_data(stack, render_pgbouncer_ro_ini(stack, replicas_in_pool(stack))),
    }


def _container(stack: RetentionStack) -> dict[str, Any]:
    spec = stack.spec.pgbouncer
    mounts = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "credentials", "mountPath": CREDENTIALS_DIR, "readOnly": True},
        {"name": "auth", "mountPath": AUTH_DIR},
    ]
    if spec.tls.ca is not None:
        mounts.append({"name": "ca", "mountPath": CA_DIR, "readOnly": True})
    if spec.tls.client is not None:
        mounts.append({"name": "client-tls", "mountPath": CLIENT_TLS_DIR, "readOnly": True})
    return {
        "name": names.COMPONENT_PGBOUNCER,
        "image": spec.image,
        "command": ["/bin/sh", "-c", RUN_SCRIPT],
        "env": [
            {"name": "PGBOUNCER_USER", "value": spec.database.user},
            {"name": "PGBOUNCER_CONFIG", "value": f"{CONFIG_DIR}/{CONFIG_FILE}"},
            {"name": "PGBOUNCER_PASSWORD_FILE", "value": f"{CREDENTIALS_DIR}/{PASSWORD_FILE}"},
            {"name": "PGBOUNCER_AUTH_FILE", "value": f"{AUTH_DIR}/{AUTH_FILE}"},
            *(
                [{"name": "PGBOUNCER_PASSFILE", "value": f"{AUTH_DIR}/{PASSFILE}"}]
                if spec.exporter.enabled
                else []
            ),
        ],
        "ports": [{"name": "pgbouncer", "containerPort": naming.PGBOUNCER_PORT, "protocol": "TCP"}],
        "resources": pods.resources(spec.resources),
        "readinessProbe": pods.tcp_probe("pgbouncer", period=5),
        "livenessProbe": pods.tcp_probe("pgbouncer", period=15),
        "startupProbe": pods.startup_probe("pgbouncer"),
        "securityContext": security.container_security_context(),
        "volumeMounts": mounts,
    }


def _exporter_container(stack: RetentionStack, image: str) -> dict[str, Any]:
    """The exporter of this pod's PgBouncer: the config and the passfile, read-only."""
    return {
        "name": naming.EXPORTER_CONTAINER,
        "image": image,
        "args": ["--config", f"{CONFIG_DIR}/{EXPORTER_CONFIG_FILE}"],
        "ports": [
            {
                "name": naming.PGBOUNCER_EXPORTER_PORT_NAME,
                "containerPort": naming.PGBOUNCER_EXPORTER_PORT,
                "protocol": "TCP",
            }
        ],
        "resources": pods.resources(stack.spec.pgbouncer.exporter.resources),
        "securityContext": security.container_security_context(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
        ],
    }


def _containers(stack: RetentionStack) -> list[dict[str, Any]]:
    image = stack.spec.pgbouncer.exporter.image
    exporter = [] if image is None else [_exporter_container(stack, image)]
    return [_container(stack), *exporter]


def _volumes(stack: RetentionStack, *, config: str) -> list[dict[str, Any]]:
    spec = stack.spec.pgbouncer
    creds = spec.credentials_secret_ref
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": config}},
        # A Secret volume (not an environment variable) is updated in place
        # by the kubelet, so a rotated password reaches PgBouncer by a reload.
        {
            "name": "credentials",
            "secret": {
                "secretName": creds.name,
                "items": [{"key": creds.password_key, "path": PASSWORD_FILE}],
                "defaultMode": 0o440,
            },
        },
        pods.empty_dir("auth", memory=True),
    ]
    ca = spec.tls.ca
    if ca is not None:
        item = {"key": ca.selector.key, "path": CA_FILE}
        if ca.secret_key_ref is not None:
            source = {"secret": {"secretName": ca.secret_key_ref.name, "items": [item]}}
        else:
            source = {"configMap": {"name": ca.selector.name, "items": [item]}}
        volumes.append({"name": "ca", **source})
    if spec.tls.client is not None:
        volumes.append(
            {
                "name": "client-tls",
                "secret": {"secretName": spec.tls.client.secret_name, "defaultMode": 0o440},
            }
        )
    return volumes


def _deployment(stack: RetentionStack, *, read_only: bool) -> dict[str, Any]:
    spec = stack.spec.pgbouncer
    component, _, config = _pool_names(stack, read_only=read_only)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(stack, read_only=read_only),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": labels.selector(stack.name, component)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": {
                    "labels": labels.labels(stack.name, component),
                    "annotations": {
                        names.ANNOTATION_CONFIG_HASH: config_hash(stack, read_only=read_only)
                    },
                },
                "spec": {
                    "securityContext": security.pod_security_context(),
                    "automountServiceAccountToken": False,
                    "containers": _containers(stack),
                    "volumes": _volumes(stack, config=config),
                },
            },
        },
    }


def build_pgbouncer_deployment(stack: RetentionStack) -> dict[str, Any]:
    """Return the primary pool's Deployment (``spec.pgbouncer.replicas``, not autoscaled).

    The pod template carries ``names.ANNOTATION_CONFIG_HASH`` so that a change
    of pgbouncer.ini rolls the pods; a password rotated in the Secret is
    reloaded in place (see the module docstring).
    """
    return _deployment(stack, read_only=False)


def build_pgbouncer_ro_deployment(stack: RetentionStack) -> dict[str, Any]:
    """Return the read pool's Deployment: same image, replicas and auth as the primary pool."""
    return _deployment(stack, read_only=True)


def _service(stack: RetentionStack, *, read_only: bool) -> dict[str, Any]:
    component, _, _ = _pool_names(stack, read_only=read_only)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(stack, read_only=read_only),
        "spec": {
            "type": "ClusterIP",
            "selector": labels.selector(stack.name, component),
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


def build_pgbouncer_service(stack: RetentionStack) -> dict[str, Any]:
    """Return the ClusterIP Service the API and workers connect to (port 6432)."""
    return _service(stack, read_only=False)


def build_pgbouncer_ro_service(stack: RetentionStack) -> dict[str, Any]:
    """Return the read pool's ClusterIP Service (``RETENTION_DATABASE_READ_URL``)."""
    return _service(stack, read_only=True)


def build_pgbouncer_pdb(stack: RetentionStack) -> dict[str, Any]:
    """Return the PDB: one PgBouncer pod at a time may be evicted."""
    component, _, _ = _pool_names(stack, read_only=False)
    return pods.pod_disruption_budget(
        _meta(stack, read_only=False), labels.selector(stack.name, component)
    )


def build_pgbouncer_ro_pdb(stack: RetentionStack) -> dict[str, Any]:
    """Return the read pool's PDB: one pod at a time may be evicted."""
    component, _, _ = _pool_names(stack, read_only=True)
    return pods.pod_disruption_budget(
        _meta(stack, read_only=True), labels.selector(stack.name, component)
    )


def build_read_pool(stack: RetentionStack) -> list[dict[str, Any]]:
    """Return the read pool's ConfigMap, Deployment, Service and PDB; empty without replicas."""
    if not stack.spec.pgbouncer.read_replicas:
        return []
    return [
        build_pgbouncer_ro_config_map(stack),
        build_pgbouncer_ro_deployment(stack),
        build_pgbouncer_ro_service(stack),
        build_pgbouncer_ro_pdb(stack),
    ]
