"""Real servers for the services tier: Redis, PostgreSQL, PgBouncer, Prometheus.

Each runs as a subprocess on 127.0.0.1 with a free port, in its own process
group, logging to a file, and is returned only once it answers. Every server
object has ``host``, ``port``, a ``url`` or ``dsn``, ``log_path``, ``start()``
and ``stop()``; a failed start raises :class:`harness.procs.NotReady` with the
log tail, and a missing binary raises :class:`MissingBinary` naming
``make packages``. The pytest fixtures over these live in
:mod:`harness.fixtures_services`.
"""

from __future__ import annotations

from harness.pki import ServerTls, create_server_tls
from harness.postgres_servers import (
    PgBouncerServer,
    PostgresServer,
    ReplicaServer,
    start_pgbouncer,
    start_postgres,
    start_replica,
)
from harness.procs import NotReady
from harness.prometheus_server import PrometheusServer, start_prometheus
from harness.redis_servers import (
    ClusterNodesFactory,
    RedisClusterServers,
    RedisServer,
    form_cluster,
    start_cluster_nodes,
    start_redis,
    wait_cluster_ok,
)
from harness.service_base import MissingBinary

__all__ = [
    "ClusterNodesFactory",
    "MissingBinary",
    "NotReady",
    "PgBouncerServer",
    "PostgresServer",
    "PrometheusServer",
    "RedisClusterServers",
    "RedisServer",
    "ReplicaServer",
    "ServerTls",
    "create_server_tls",
    "form_cluster",
    "start_cluster_nodes",
    "start_pgbouncer",
    "start_postgres",
    "start_prometheus",
    "start_redis",
    "start_replica",
    "wait_cluster_ok",
]
