"""pytest fixtures for the real services (Redis, PostgreSQL, PgBouncer, Prometheus).

Servers are session-scoped: each starts once, on first use, and stops at the
end of the session. Their logs and data are under pytest's base temp dir (as
root, PostgreSQL's and PgBouncer's data dirs are elsewhere; see
:meth:`harness.service_base.RunAs.private_dir`). A server that fails to start
errors the test with its log tail; a missing binary errors it with the hint to
run ``make packages``. Nothing is skipped.

A test that stops a session server must start it again before it returns.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.services import (
    ClusterNodesFactory,
    PgBouncerServer,
    PostgresServer,
    PrometheusServer,
    RedisClusterServers,
    RedisServer,
    ReplicaServer,
    ServerTls,
    create_server_tls,
    form_cluster,
    start_cluster_nodes,
    start_pgbouncer,
    start_postgres,
    start_prometheus,
    start_redis,
    start_replica,
)


@pytest.fixture(scope="session")
def redis_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A standalone Redis without password or persistence."""
    server = start_redis(base_dir=tmp_path_factory.mktemp("redis-standalone"))
    yield server
    server.stop()


@pytest.fixture
def redis_db(redis_standalone: RedisServer) -> RedisServer:
    """The standalone Redis, started if a test left it stopped, and flushed."""
    redis_standalone.start()
    with redis_standalone.client() as conn:
        conn.flushall()
    return redis_standalone


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A formed 6-node Redis Cluster: 3 masters, 3 replicas, every node ok."""
    nodes = start_cluster_nodes(6, base_dir=tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster = form_cluster(nodes, replicas=1)
    except Exception:
        for node in nodes:
            node.stop()
        raise
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster_nodes_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ClusterNodesFactory]:
    """A callable ``(n=6) -> nodes`` starting UNFORMED cluster-mode nodes, stopped at test end."""
    started: list[RedisServer] = []

    def factory(n: int = 6) -> list[RedisServer]:
        base = tmp_path_factory.mktemp("redis-nodes")
        nodes = start_cluster_nodes(n, base_dir=base, prefix=f"{base.name}-node")
        started.extend(nodes)
        return nodes

    yield factory
    for node in started:
        node.stop()


@pytest.fixture(scope="session")
def postgres_tls(tmp_path_factory: pytest.TempPathFactory) -> ServerTls:
    """The CA of the session's PostgreSQL and its certificate, valid for 127.0.0.1 only."""
    return create_server_tls(
        tmp_path_factory.mktemp("postgres-tls"), hosts=["127.0.0.1"], ca_name="harness-db-ca"
    )


@pytest.fixture(scope="session")
def postgres(
    tmp_path_factory: pytest.TempPathFactory, postgres_tls: ServerTls
) -> Iterator[PostgresServer]:
    """PostgreSQL with a password-authenticated role owning one database.

    It serves TLS (certificate of ``postgres_tls``, for 127.0.0.1) beside plain
    TCP, as a hosted database does: a stack's default sslmode towards a host
    outside the cluster is ``require``.
    """
    server = start_postgres(base_dir=tmp_path_factory.mktemp("postgres"), tls=postgres_tls)
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def postgres_replica(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[ReplicaServer]:
    """A streaming hot standby of ``postgres`` (pg_basebackup), replaying; same role and TLS.

    A test that pauses its replay or stops it must resume or start it before it returns.
    """
    replica = start_replica(postgres, base_dir=tmp_path_factory.mktemp("replica"))
    yield replica
    replica.cleanup()


@pytest.fixture(scope="session")
def pgbouncer(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[PgBouncerServer]:
    """PgBouncer in transaction pool mode in front of ``postgres``; same role and database."""
    bouncer = start_pgbouncer(postgres, base_dir=tmp_path_factory.mktemp("pgbouncer"))
    yield bouncer
    bouncer.cleanup()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """Prometheus scraping every second, with no targets until a test adds some."""
    server = start_prometheus(base_dir=tmp_path_factory.mktemp("prometheus"))
    yield server
    server.stop()
