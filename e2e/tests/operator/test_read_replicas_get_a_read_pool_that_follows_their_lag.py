"""A stack with a read replica gets a second pool, and the operator moves the replica out of
it and back as its real replication lag crosses maxLagSeconds, with an Event each way.

The primary and the replica are real (the harness's PostgreSQL and its pg_basebackup
standby); the operator measures their WAL positions from its own process. Pods do not
run on KWOK, so what is checked here is what the operator writes: the read pool's
objects, status.pgbouncer, the Events and the read pool's ConfigMap. PgBouncer reloading
that ConfigMap is tested on real PgBouncer processes in e2e/tests/services.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from kubernetes import client

import retention_contract as contract
from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer, ReplicaServer
from harness.stacks import events, get_stack, ready_stack, stack_manifest, wait_for

pytestmark = pytest.mark.e2e

NAME = "reads"
MAX_LAG = 1.0


def _replica_status(custom: client.CustomObjectsApi, namespace: str) -> dict[str, Any] | None:
    status = get_stack(custom, namespace, NAME).get("status") or {}
    replicas = (status.get("pgbouncer") or {}).get("readReplicas") or []
    return dict(replicas[0]) if replicas else None


def _database_line(core: client.CoreV1Api, namespace: str) -> str:
    config = core.read_namespaced_config_map(f"{NAME}-pgbouncer-ro-config", namespace)
    ini: str = (config.data or {})["pgbouncer.ini"]
    return ini.splitlines()[1]


class _Writer:
    """Commits on the primary every 50 ms so that a paused replica falls behind."""

    def __init__(self, postgres: PostgresServer) -> None:
        self._postgres = postgres
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._postgres.psql_super_db("CREATE TABLE IF NOT EXISTS lag_probe (id uuid)")
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._postgres.psql_super_db("INSERT INTO lag_probe VALUES (gen_random_uuid())")
            time.sleep(0.05)

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_read_pool_follows_the_replicas_lag(
    control_plane: ControlPlane,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    postgres_replica: ReplicaServer,
    redis_standalone: RedisServer,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    replica = {"host": postgres_replica.host, "port": postgres_replica.port}
    manifest = stack_manifest(
        NAME,
        namespace,
        postgres=postgres,
        redis=redis_standalone,
        pgbouncer={"readReplicas": [replica], "maxLagSeconds": MAX_LAG},
    )
    ready_stack(control_plane, api_client, manifest, password=postgres.password)

    # Two pools, each with its own Deployment, Service and PDB.
    for name in (f"{NAME}-pgbouncer", f"{NAME}-pgbouncer-ro"):
        apps.read_namespaced_deployment(name, namespace)
        core.read_namespaced_service(name, namespace)
        client.PolicyV1Api(api_client).read_namespaced_pod_disruption_budget(name, namespace)
    api = apps.read_namespaced_deployment(f"{NAME}-api", namespace)
    env = {e.name: e.value for e in api.spec.template.spec.containers[0].env}
    assert env[contract.ENV_DATABASE_READ_URL] == (
        f"postgresql://{postgres.user}@{NAME}-pgbouncer-ro.{namespace}.svc:6432/{postgres.dbname}"
    )

    wait_for(
        lambda: (s := _replica_status(custom, namespace)) and s["inReadPool"],
        timeout=30,
        what="the replica in the read pool",
    )
    replica_line = f"host={postgres_replica.host} port={postgres_replica.port}"
    # The operator changes the pool's config before it reports the change.
    assert replica_line in _database_line(core, namespace)

    with _Writer(postgres):
        postgres_replica.pause_replay()
        try:
            paused = time.monotonic()
            out = wait_for(
                lambda: (s := _replica_status(custom, namespace)) and not s["inReadPool"] and s,
                timeout=20,
                interval=0.1,
                what="the lagging replica to leave the read pool",
            )
            left_after = time.monotonic() - paused
            assert "past maxLagSeconds" in out["message"]
            primary_line = f"host={postgres.host} port={postgres.port}"
            assert primary_line in _database_line(core, namespace)
            left = wait_for(
                lambda: events(core, namespace, reason="ReplicaLeftReadPool"),
                timeout=10,
                what="a ReplicaLeftReadPool Event",
            )
            assert left[0].type == "Warning"
            # The bound, a tick or two of the loop, and status reads every 0.1 s.
            assert left_after < MAX_LAG + 2.5, f"left after {left_after:.1f}s"
            print(f"\nreplica paused -> out of the read pool after {left_after:.2f}s")
        finally:
            postgres_replica.resume_replay()
        wait_for(
            lambda: (s := _replica_status(custom, namespace)) and s["inReadPool"],
            timeout=20,
            what="the replica to rejoin once it caught up",
        )
    joined = wait_for(
        lambda: events(core, namespace, reason="ReplicaJoinedReadPool"),
        timeout=10,
        what="a ReplicaJoinedReadPool Event",
    )
    assert joined[0].type == "Normal"
    if replica_line not in _database_line(core, namespace):
        cm = core.read_namespaced_config_map(f"{NAME}-pgbouncer-ro-config", namespace)
        print(
            "DBG",
            time.time(),
            cm.data,
            [(m.manager, m.time, m.operation) for m in cm.metadata.managed_fields],
            cm.metadata.annotations,
        )
        print("DBG", _replica_status(custom, namespace))
    assert replica_line in _database_line(core, namespace)
