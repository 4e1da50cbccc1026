"""Fixtures of the workloads tests: the API and workers as real subprocesses.

``workloads`` starts ``python -m retention_workloads.api`` / ``.worker`` with
the environment the operator would set, pointed at the harness's real Redis
(standalone or cluster, see ``redis_backend``) and at PgBouncer in transaction
mode; each test gets a stack name of its own, hence its own stream keys. Every
process is stopped (its process group, SIGKILL after a grace) at test end.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis
import redis.cluster
from prometheus_client.parser import text_string_to_metric_families

import retention_contract as contract
from harness.procs import Proc, free_port, port_open, start, wait_until
from retention_workloads.jobs import encode_entry

SyncRedis = redis.Redis | redis.cluster.RedisCluster


@dataclass(frozen=True)
class RedisBackend:
    """Where the stream lives: a URL, whether it is a cluster, and a sync client factory."""

    kind: str
    url: str
    cluster: bool
    client: Callable[[], SyncRedis]


@pytest.fixture(params=["standalone", "cluster"])
def redis_backend(request: pytest.FixtureRequest) -> RedisBackend:
    """Each test that uses it runs once on a standalone Redis and once on a Redis Cluster."""
    if request.param == "standalone":
        server = request.getfixturevalue("redis_db")
        return RedisBackend("standalone", server.url, False, server.client)
    cluster = request.getfixturevalue("redis_cluster")
    return RedisBackend("cluster", cluster.url, True, cluster.client)


@pytest.fixture
def standalone_backend(redis_db: Any) -> RedisBackend:
    """The standalone Redis only, for tests whose point is not the Redis topology."""
    return RedisBackend("standalone", redis_db.url, False, redis_db.client)


def wait_for(check: Callable[[], bool], *, what: str, timeout: float) -> None:
    """Poll ``check`` every 0.1 s; fail the test naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Workloads:
    """The API and workers of one test stack, started as subprocesses."""

    stack: str
    backend: RedisBackend
    pgbouncer: Any
    postgres: Any
    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return contract.default_stream("tests", self.stack)

    @property
    def deadletter(self) -> str:
        return contract.deadletter_stream(self.stream)

    def env(self, **overrides: object) -> dict[str, str]:
        """Return the environment the operator would set, plus ``overrides`` (contract names)."""
        bouncer = self.pgbouncer
        env = {
            contract.ENV_STACK_NAME: self.stack,
            contract.ENV_STACK_NAMESPACE: "tests",
            contract.ENV_REDIS_URL: self.backend.url,
            contract.ENV_REDIS_CLUSTER: "true" if self.backend.cluster else "false",
            contract.ENV_DATABASE_URL: (
                f"postgresql://{bouncer.user}@{bouncer.host}:{bouncer.port}/{bouncer.dbname}"
            ),
            contract.ENV_DATABASE_PASSWORD: bouncer.password,
            contract.ENV_BIND_ADDRESS: "127.0.0.1",
            contract.ENV_CLAIM_IDLE_MS: "1500",
            contract.ENV_LOG_LEVEL: "INFO",
        }
        env.update({name: str(value) for name, value in overrides.items()})
        return env

    def api(self, **overrides: object) -> tuple[Proc, str]:
        """Start an API process; return it and its base URL once it answers /healthz."""
        port = free_port()
        proc = self._start("api", self.env(**{contract.ENV_HTTP_PORT: port, **overrides}))
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: httpx.get(f"{url}/healthz", timeout=1).status_code == 200,
            what="API /healthz",
            timeout=30,
            proc=proc,
        )
        return proc, url

    def worker(self, **overrides: object) -> tuple[Proc, int]:
        """Start a worker; return it and its metrics port once it serves metrics."""
        port = free_port()
        proc = self._start("worker", self.env(**{contract.ENV_METRICS_PORT: port, **overrides}))
        wait_until(lambda: port_open(port), what="worker metrics port", timeout=30, proc=proc)
        return proc, port

    def _start(self, role: str, env: dict[str, str]) -> Proc:
        name = f"{role}-{len(self.procs)}"
        argv = [sys.executable, "-m", f"retention_workloads.{role}"]
        proc = start(name, argv, log_dir=self.log_dir, env=env)
        self.procs.append(proc)
        return proc

    def redis(self) -> SyncRedis:
        return self.backend.client()

    def enqueue(self, count: int, *, task: str = "test") -> list[uuid.UUID]:
        """Append ``count`` well-formed jobs straight to the stream; return their ids."""
        ids = [uuid.uuid4() for _ in range(count)]
        now_ms = int(time.time() * 1000)
        client = self.redis()
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            fields = encode_entry(
                job_id=job_id, task=task, payload_json="{}", enqueued_ms=now_ms, attempts=0
            )
            pipe.xadd(self.stream, fields)  # type: ignore[arg-type]
        pipe.execute()
        return ids

    def pending(self) -> int:
        """Entries delivered to the group and not acknowledged (0 if the group is absent)."""
        try:
            summary = self.redis().xpending(self.stream, contract.DEFAULT_QUEUE_GROUP)
        except redis.ResponseError:
            return 0
        return int(summary["pending"])

    def rows(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """Return the jobs table rows of ``ids``, read straight from PostgreSQL."""
        return asyncio.run(_rows(self.postgres.dsn, ids))

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop(timeout=5)


async def _rows(dsn: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetch(
            "SELECT id, state, error, attempts, redeliveries, worker,"
            " enqueued_at, started_at, finished_at"
            " FROM retention_jobs WHERE id = ANY($1::uuid[])",
            ids,
        )
    except asyncpg.UndefinedTableError:
        return {}
    finally:
        await conn.close()
    return {row["id"]: dict(row) for row in found}


@pytest.fixture
def workloads(
    request: pytest.FixtureRequest,
    pgbouncer: Any,
    postgres: Any,
    tmp_path: Path,
) -> Iterator[Workloads]:
    """A fresh stack on the requested Redis backend, with PgBouncer; processes stopped after."""
    backend_name = (
        "redis_backend" if "redis_backend" in request.fixturenames else "standalone_backend"
    )
    backend: RedisBackend = request.getfixturevalue(backend_name)
    stack = f"t{uuid.uuid4().hex[:10]}"
    runner = Workloads(
        stack=stack, backend=backend, pgbouncer=pgbouncer, postgres=postgres, log_dir=tmp_path
    )
    try:
        yield runner
    finally:
        runner.stop_all()
        for proc in runner.procs:
            sys.stderr.write(f"--- {proc.name} log tail\n{proc.log_tail(15)}\n")


@pytest.fixture(name="wait_for")
def _wait_for_fixture() -> Callable[..., None]:
    """The :func:`wait_for` poller, for tests (they cannot import conftest)."""
    return wait_for


def refused_jobs(metrics: str, reason: str) -> float:
    """The API's count of jobs refused for ``reason``, read from its /metrics text."""
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if (
                sample.name == contract.METRIC_API_JOBS_REFUSED
                and sample.labels["reason"] == reason
            ):
                return float(sample.value)
    raise AssertionError(f"no {contract.METRIC_API_JOBS_REFUSED} series for {reason}")


@pytest.fixture(name="refusals")
def _refusals_fixture() -> Callable[[str, str], float]:
    """:func:`refused_jobs`, for tests (they cannot import conftest)."""
    return refused_jobs
