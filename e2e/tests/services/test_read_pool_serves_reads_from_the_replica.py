"""The read pool on real servers: a PostgreSQL primary, a pg_basebackup streaming replica,
and two PgBouncers (1.18) run by the operator's start script with the configs its builders render.

The operator's own pieces do the work: :mod:`retention_operator.readpool.lag`
reads WAL positions from the servers, :class:`~retention_operator.readpool.membership.LagTracker`
and :func:`~retention_operator.readpool.membership.decide` judge the replica,
the builder renders the read pool's config, and the start script reloads
PgBouncer when it changes. What the Kubernetes side adds (status, Events, the
ConfigMap on the API server) is tested in e2e/tests/operator.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import retention_contract as contract
from harness.services import PgBouncerServer, PostgresServer, ReplicaServer, start_pgbouncer
from retention_operator.builders import pgbouncer
from retention_operator.model import ReadReplica, RetentionStack
from retention_operator.readpool import lag
from retention_operator.readpool.membership import LagTracker, decide
from retention_workloads import db, settings

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

MAX_LAG = 1.0
TICK = 0.25


@pytest.fixture
def pools(
    postgres: PostgresServer, postgres_replica: ReplicaServer, tmp_path: Path, stack_on: Any
) -> Iterator[tuple[RetentionStack, PgBouncerServer, PgBouncerServer]]:
    """The primary pool and the read pool (replica in it), each under the start script."""
    stack = stack_on(
        postgres,
        defaultPoolSize=5,
        readReplicas=[{"host": postgres_replica.host, "port": postgres_replica.port}],
        maxLagSeconds=MAX_LAG,
    )
    replicas = list(stack.spec.pgbouncer.read_replicas)
    primary = start_pgbouncer(
        postgres,
        base_dir=tmp_path,
        rendered_ini=pgbouncer.render_pgbouncer_ini(stack),
        run_script=pgbouncer.RUN_SCRIPT,
        name="pgbouncer-rw",
    )
    try:
        reads = start_pgbouncer(
            postgres,
            base_dir=tmp_path,
            rendered_ini=pgbouncer.render_pgbouncer_ro_ini(stack, replicas),
            run_script=pgbouncer.RUN_SCRIPT,
            name="pgbouncer-ro",
        )
    except Exception:
        primary.cleanup()
        raise
    yield stack, primary, reads
    reads.cleanup()
    primary.cleanup()


def _settings(primary: PgBouncerServer, reads: PgBouncerServer) -> settings.Settings:
    url = f"postgresql://{primary.user}@{primary.host}:{{port}}/{primary.dbname}"
    return settings.load(
        {
            contract.ENV_DATABASE_URL: url.format(port=primary.port),
            contract.ENV_DATABASE_READ_URL: url.format(port=reads.port),
            contract.ENV_DATABASE_PASSWORD: primary.password,
        }
    )


@pytest.fixture
async def app_pools(
    pools: tuple[RetentionStack, PgBouncerServer, PgBouncerServer],
) -> AsyncIterator[db.Pools]:
    """The workloads' own pools (as the API makes them) on the two PgBouncers."""
    _, primary, reads = pools
    made = await db.create_pools(_settings(primary, reads))
    await db.ensure_schema(made.primary)
    yield made
    await made.close()


async def _record(pools: db.Pools) -> uuid.UUID:
    job_id = uuid.uuid4()
    await db.record(
        pools.primary,
        job_id=job_id,
        task="t",
        state="done",
        result={},
        error=None,
        attempts=0,
        worker="test",
        enqueued_ms=None,
    )
    return job_id


async def _until(check: Any, *, within: float, what: str) -> float:
    """Await ``check()`` until truthy; return the seconds it took."""
    began = time.monotonic()
    while time.monotonic() - began < within:
        if await check():
            return time.monotonic() - began
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")


async def _scans(server: PostgresServer) -> int:
    """Reads of job rows this server ran (the workloads' SELECT of one row)."""
    return await asyncio.to_thread(server.statement_calls, "FROM retention_jobs WHERE id")


async def test_reads_land_on_the_replica_and_writes_on_the_primary(
    app_pools: db.Pools, postgres: PostgresServer, postgres_replica: ReplicaServer
) -> None:
    job = await _record(app_pools)
    await _until(lambda: db.read(app_pools.replica, job), within=10, what="the row on the replica")
    before = (await _scans(postgres), await _scans(postgres_replica))

    for _ in range(20):
        assert await db.read_your_writes(app_pools, job) is not None

    after = (await _scans(postgres), await _scans(postgres_replica))
    assert after[1] - before[1] >= 20, "the reads ran on the replica"
    assert after[0] == before[0], "no read ran on the primary"
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        await app_pools.replica.execute("DELETE FROM retention_jobs")


async def test_a_row_the_replica_lacks_is_read_from_the_primary(
    app_pools: db.Pools, postgres_replica: ReplicaServer
) -> None:
    await asyncio.to_thread(postgres_replica.pause_replay)
    try:
        job = await _record(app_pools)
        assert await db.read(app_pools.replica, job) is None
        row = await db.read_your_writes(app_pools, job)
        assert row is not None and row.id == job
    finally:
        await asyncio.to_thread(postgres_replica.resume_replay)


async def test_a_stopped_replica_falls_back_to_the_primary(
    app_pools: db.Pools, postgres_replica: ReplicaServer
) -> None:
    job = await _record(app_pools)
    await _until(lambda: db.read(app_pools.replica, job), within=10, what="the row on the replica")
    postgres_replica.stop()
    try:
        began = time.monotonic()
        row = await db.read_your_writes(app_pools, job)
        took = time.monotonic() - began
        assert row is not None and row.id == job
        # The read pool holds a client while it cannot reach its server; the
        # API gives it db.REPLICA_READ_TIMEOUT, then asks the primary.
        assert took < db.REPLICA_READ_TIMEOUT + 1.0, f"the fallback took {took:.1f}s"
    finally:
        postgres_replica.start()


class _Controller:
    """What the operator's read pool loop does each tick, minus the Kubernetes API:
    measure, decide, and on a change render the read pool's config for the start script."""

    def __init__(self, stack: RetentionStack, reads: PgBouncerServer, password: str) -> None:
        self.stack, self.reads, self.password = stack, reads, password
        self.conns = lag.Connections()
        self.tracker = LagTracker()
        self.in_pool = True
        self.lags: list[float] = []

    async def tick(self) -> None:
        spec = self.stack.spec.pgbouncer
        db_spec, replica = spec.database, spec.read_replicas[0]
        primary_key = (db_spec.host, db_spec.port, db_spec.name, db_spec.user)
        replica_key = (replica.host, replica.port, db_spec.name, db_spec.user)
        primary = await lag.primary_lsn(
            self.conns, primary_key, password=self.password, ssl_arg="require"
        )
        reading = await lag.replica_reading(
            self.conns, replica_key, password=self.password, ssl_arg="require"
        )
        measured = None
        if reading.replay_lsn is not None:
            now = time.monotonic()
            measured = self.tracker.observe(
                now=now, primary_lsn=primary, replay_lsn=reading.replay_lsn
            )
            self.lags.append(measured)
        verdict = decide(
            was_in_pool=self.in_pool,
            lag=measured,
            error=reading.error,
            max_lag=spec.max_lag_seconds,
        )
        if verdict.in_pool != self.in_pool:
            self.in_pool = verdict.in_pool
            members: list[ReadReplica] = [replica] if verdict.in_pool else []
            self.reads.reload(pgbouncer.render_pgbouncer_ro_ini(self.stack, members))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.tick()
            await asyncio.sleep(TICK)


async def test_a_paused_replica_leaves_the_read_pool_within_the_bound_and_comes_back(
    pools: tuple[RetentionStack, PgBouncerServer, PgBouncerServer],
    app_pools: db.Pools,
    postgres_replica: ReplicaServer,
) -> None:
    stack, primary, reads = pools
    controller = _Controller(stack, reads, primary.password)
    stop = asyncio.Event()
    runner = asyncio.create_task(controller.run(stop))
    try:
        await _until(lambda: _replayed(postgres_replica), within=10, what="the replica to catch up")
        await asyncio.to_thread(postgres_replica.pause_replay)
        paused_at = time.monotonic()
        # Writes go on: the replica falls behind. A row written after the pause
        # read through the read pool proves that the primary serves the reads.
        left = await _until(
            lambda: _read_pool_sees_new_rows(app_pools),
            within=15,
            what="reads through the read pool to reach the primary",
        )
        assert not controller.in_pool
        elapsed = time.monotonic() - paused_at
        # The bound, one tick to see it, and the start script's one-second check.
        assert elapsed <= MAX_LAG + 2 * TICK + 1.0 + 1.5, f"left the pool after {elapsed:.1f}s"
        print(f"\nreplica paused -> reads on the primary after {elapsed:.2f}s ({left:.2f}s)")

        await asyncio.to_thread(postgres_replica.resume_replay)
        resumed_at = time.monotonic()
        await _until(lambda: _in_pool(controller), within=15, what="the replica to rejoin")
        job = await _record(app_pools)
        await _until(lambda: db.read(app_pools.replica, job), within=10, what="replica reads")
        print(
            f"replica resumed -> back in the read pool after {time.monotonic() - resumed_at:.2f}s"
        )
    finally:
        stop.set()
        await runner
        await controller.conns.close()
        await asyncio.to_thread(postgres_replica.resume_replay)


async def _replayed(replica: ReplicaServer) -> bool:
    return await asyncio.to_thread(replica.replayed_up_to_primary)


async def _in_pool(controller: _Controller) -> bool:
    return controller.in_pool


async def _read_pool_sees_new_rows(pools: db.Pools) -> bool:
    job = await _record(pools)
    assert pools.replica is not None
    return await db.read(pools.replica, job) is not None
