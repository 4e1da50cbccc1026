"""An RQ queue reads as RQ itself reports it, at every step of fill and drain.

Real RQ from PyPI (the version uv.lock pins) enqueues through the driver
``e2e/queues/rq/driver.py``, and real ``rq worker --burst`` processes take the jobs,
which hold until the test releases them. After each step the reader's one round trip
must give waiting = ``Queue.count`` + the scheduled jobs already due
(``ScheduledJobRegistry.get_jobs_to_schedule``), in progress =
``StartedJobRegistry.count``, and the age of the job at the head of the queue.

On a Redis Cluster (prefix ``{rq}``, RQ_KEY_PREFIX) only producing is tested: RQ 3.0's
worker does not run on a cluster client (``BaseWorker._set_connection`` reads
``connection.connection_pool``, which ``RedisCluster`` lacks).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.drivers import RQ_DRIVER, rq_driver
from harness.procs import Proc, start, wait_until
from retention_operator.autoscaling.queues import RQQueue
from retention_operator.autoscaling.signals import QueueRef, RedisEndpoint

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

RQ = Path(sys.executable).parent / "rq"


def _ref(prefix: str) -> QueueRef:
    return QueueRef("shop", "mail", RQQueue(name=f"mail-{uuid.uuid4().hex[:8]}", prefix=prefix))


async def _check(read_queue: Any, endpoint: RedisEndpoint, ref: QueueRef, driver: Any) -> Any:
    report = driver("counts")
    reading = (await read_queue(endpoint, ref))[ref]
    waiting = report["queued"] + report["due"]
    got = (reading.backlog, reading.lag, reading.pending)
    assert got == (waiting + report["started"], waiting, report["started"]), report
    if report["oldestSince"] is None:
        assert reading.queue_wait_seconds == 0.0
    else:
        age = time.time() - report["oldestSince"] / 1000
        # RQ's scheduled times are whole seconds; an enqueue time has microseconds.
        assert age - 1.1 <= reading.queue_wait_seconds <= age + 0.1, report
    return reading


@pytest.fixture
def workers(redis_db: Any, tmp_path: Path) -> Iterator[Callable[[str, int], list[Proc]]]:
    started: list[Proc] = []

    def run(queue: str, n: int) -> list[Proc]:
        env = {"RETENTION_REDIS_URL": redis_db.url, "PYTHONPATH": str(RQ_DRIVER.parent)}
        argv = [str(RQ), "worker", "--burst", "--url", redis_db.url, queue]
        procs = [start(f"rq-worker-{i}", argv, log_dir=tmp_path, env=env) for i in range(n)]
        started.extend(procs)
        return procs

    yield run
    for proc in started:
        proc.stop(timeout=5)


async def test_every_step_reads_as_rq_reports(
    redis_db: Any, read_queue: Any, workers: Any, tmp_path: Path
) -> None:
    ref = _ref("rq")
    assert isinstance(ref.source, RQQueue)
    endpoint = RedisEndpoint(url=redis_db.url)
    env = {"RETENTION_REDIS_URL": redis_db.url, "RETENTION_QUEUE_NAME": ref.source.name}
    driver = rq_driver(run_dir=tmp_path / "driver", env=env)
    try:
        empty = await _check(read_queue, endpoint, ref, driver)
        assert (empty.backlog, empty.arrivals_total) == (0, 0)

        driver("add", tags=["a", "b", "c", "d"])
        driver("add", tags=["soon"], in_seconds=0.3)
        driver("add", tags=["later"], in_seconds=3600)
        await asyncio.sleep(
            1.2
        )  # "soon" is due; no worker runs the scheduler, so it stays scheduled
        filled = await _check(read_queue, endpoint, ref, driver)
        assert filled.backlog == 5 and filled.queue_wait_seconds >= 1.0

        procs = workers(ref.source.name, 2)
        wait_until(lambda: driver("counts")["started"] == 2, what="two started", timeout=20)
        taken = await _check(read_queue, endpoint, ref, driver)
        assert (taken.lag, taken.pending) == (3, 2)

        driver("release", tags=["a"])
        wait_until(
            lambda: (
                driver("counts") | {"oldestSince": 0}
                == {"queued": 1, "started": 2, "due": 1, "oldestSince": 0}
            ),
            what="a done, c started",
            timeout=20,
        )
        await _check(read_queue, endpoint, ref, driver)

        driver("release", tags=["b", "c", "d"])
        wait_until(lambda: not any(p.alive() for p in procs), what="workers done", timeout=30)
        drained = await _check(read_queue, endpoint, ref, driver)
        # The due scheduled job still waits: a worker (with --with-scheduler) must come.
        assert (drained.backlog, drained.lag, drained.pending) == (1, 1, 0)
        assert not drained.arrivals_counted
        assert drained.arrivals_total - drained.completed_total == drained.backlog
    finally:
        driver.close()


async def test_a_cluster_reads_what_rq_enqueued_with_a_hash_tagged_prefix(
    redis_cluster: Any, read_queue: Any, tmp_path: Path
) -> None:
    ref = _ref("{rq}")
    assert isinstance(ref.source, RQQueue)
    endpoint = RedisEndpoint(url=redis_cluster.url, cluster=True)
    env = {
        "RETENTION_REDIS_URL": redis_cluster.url,
        "RETENTION_REDIS_CLUSTER": "true",
        "RETENTION_QUEUE_NAME": ref.source.name,
        "RQ_KEY_PREFIX": "{rq}",
    }
    driver = rq_driver(run_dir=tmp_path / "driver", env=env)
    try:
        driver("add", tags=["a", "b", "c"])
        driver("add", tags=["soon"], in_seconds=0.3)
        await asyncio.sleep(1.2)
        reading = await _check(read_queue, endpoint, ref, driver)
        assert (reading.backlog, reading.error) == (4, None)
    finally:
        driver.close()


async def test_a_job_started_but_not_yet_off_the_intermediate_list_counts_once(
    redis_db: Any, read_queue: Any
) -> None:
    """RQ's worker adds a job to the started registry (``prepare_execution``, before the
    fork) and its work horse takes it off the intermediate list only later
    (``prepare_job_execution``): in between the job is on both, as written here with
    RQ's own keys, and is one job in progress, not two."""
    import redis

    ref = _ref("rq")
    assert isinstance(ref.source, RQQueue)
    expires = time.time() + 600
    with redis.Redis.from_url(redis_db.url) as r:
        r.rpush(f"{ref.source.queue_key}:intermediate", "job-1", "job-2")
        r.zadd(f"rq:wip:{ref.source.name}", {"job-1:exec-a": expires})
    reading = (await read_queue(RedisEndpoint(url=redis_db.url), ref))[ref]
    # job-1 is started; job-2 was dequeued and not yet registered.
    assert (reading.backlog, reading.lag, reading.pending) == (2, 0, 2)
