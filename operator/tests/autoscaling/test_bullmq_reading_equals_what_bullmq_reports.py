"""A BullMQ queue reads as BullMQ itself reports it, at every step of fill and drain.

Real BullMQ from the npm registry (5.81.5 from e2e/queues/bullmq5 and 6.7.0, the
example's) produces, and a real Worker takes and finishes jobs by hand
(``getNextJob``, ``moveToCompleted``/``moveToFailed``), through the driver
``e2e/queues/bullmq/driver.js``; real Redis standalone and a real 6-node Redis
Cluster (the ``{bull}`` prefix, as BullMQ requires there). After each step the
reader's one round trip must give backlog = waiting + paused + prioritized +
delayed-due + active of ``getJobCounts`` (and BullMQ 6's ``getDelayedCount``), the
id counter as arrivals, completed + failed as completions, and the age of the
oldest waiting job from its hash.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from harness import node_apps
from retention_operator.autoscaling.queues import BullMQQueue
from retention_operator.autoscaling.signals import QueueRef, RedisEndpoint

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


@pytest.fixture(params=["standalone", "cluster"])
def redis_endpoint(request: pytest.FixtureRequest) -> RedisEndpoint:
    if request.param == "cluster":
        return RedisEndpoint(url=request.getfixturevalue("redis_cluster").url, cluster=True)
    return RedisEndpoint(url=request.getfixturevalue("redis_db").url)


def _expected(report: dict[str, Any]) -> dict[str, Any]:
    counts = report["counts"]
    active = counts["active"]
    waiting = counts["waiting"] + counts.get("paused", 0) + counts["prioritized"] + report["due"]
    return {
        "backlog": waiting + active,
        "lag": waiting,
        "pending": active,
        "arrivals_total": report["added"],
        "completed_total": counts["completed"] + counts["failed"],
    }


async def _check(read_queue: Any, endpoint: RedisEndpoint, ref: QueueRef, driver: Any) -> Any:
    report = driver("counts")
    reading = (await read_queue(endpoint, ref))[ref]
    got = {key: getattr(reading, key) for key in _expected(report)}
    assert got == _expected(report), report
    if report["oldestSince"] is None:
        assert reading.queue_wait_seconds == 0.0
    else:
        age = (time.time() * 1000 - report["oldestSince"]) / 1000
        assert age - 0.5 <= reading.queue_wait_seconds <= age + 0.1, report
    return reading


@pytest.mark.parametrize("major", [5, 6])
async def test_every_step_reads_as_bullmq_reports(
    major: int, redis_endpoint: RedisEndpoint, read_queue: Any, tmp_path: Path
) -> None:
    source = BullMQQueue(name=f"emails-{uuid.uuid4().hex[:8]}", prefix="{bull}")
    if not redis_endpoint.cluster:
        source = BullMQQueue(name=source.name)  # the default prefix, bull
    ref = QueueRef(namespace="shop", stack="mail", source=source)
    env = {
        "RETENTION_REDIS_URL": redis_endpoint.url,
        "RETENTION_REDIS_CLUSTER": str(redis_endpoint.cluster).lower(),
        "RETENTION_QUEUE_NAME": source.name,
        "RETENTION_QUEUE_PREFIX": source.prefix,
    }
    driver = node_apps.node_driver(node_apps.bullmq_driver(major), run_dir=tmp_path, env=env)
    try:
        assert driver("version").startswith(f"{major}.")
        empty = await _check(read_queue, redis_endpoint, ref, driver)
        assert empty.backlog == 0 and empty.arrivals_total == 0

        driver("add", n=3)
        driver("add", n=2, opts={"priority": 5})
        driver("add", n=1, opts={"delay": 200})
        driver("add", n=1, opts={"delay": 3_600_000})
        await asyncio.sleep(0.4)  # the short delay is due now, and no worker has promoted it
        filled = await _check(read_queue, redis_endpoint, ref, driver)
        assert (filled.backlog, filled.queue_wait_seconds > 0.3) == (6, True)

        driver("take", n=2)  # a worker asks: the due job is promoted, two become active
        await _check(read_queue, redis_endpoint, ref, driver)
        driver("finish", n=1)
        driver("finish", n=1, fail=True)
        finished = await _check(read_queue, redis_endpoint, ref, driver)
        assert finished.completed_total == 2

        driver("pause")  # BullMQ 5 parks new jobs in :paused, 6 keeps them in :wait
        driver("add", n=2)
        await _check(read_queue, redis_endpoint, ref, driver)
        driver("resume")

        while driver("take", n=4):
            await _check(read_queue, redis_endpoint, ref, driver)
            driver("finish", n=4)
        drained = await _check(read_queue, redis_endpoint, ref, driver)
        # Only the job delayed by an hour is left, and it is not due: nothing waits.
        assert (drained.backlog, drained.queue_wait_seconds) == (0, 0.0)
        assert drained.arrivals_total - drained.completed_total == 1
    finally:
        driver.close()
