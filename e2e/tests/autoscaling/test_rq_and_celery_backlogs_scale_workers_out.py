"""A stack whose workers consume an RQ or a Celery queue scales out within two ticks when a
real producer fills it, and ``kubectl get rstack`` shows the backlog the library reports.

RQ enqueues through ``e2e/queues/rq/driver.py`` (``Queue.enqueue``, the count is
``Queue.count``); Celery sends with ``Celery.send_task`` across priority sub-queues (the
count is ``queue_declare().message_count``). No consumer runs: KWOK runs no containers,
and the BullMQ test (test_bullmq_workers_scale_out_and_back_in_with_real_consumers.py)
is the one that drains with real consumers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.drivers import rq_driver
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import apply_ok, create_secret, replicas, stack_manifest, wait_for

from .conftest import TICK_SECONDS, backlog_shown, scaled_out_within_two_ticks

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

JOBS = 60


def _fill_rq(redis: RedisServer, name: str, run_dir: Path) -> Callable[[], int]:
    driver = rq_driver(run_dir=run_dir, env={"RETENTION_REDIS_URL": redis.url,
                                             "RETENTION_QUEUE_NAME": name})  # fmt: skip
    try:
        driver("add", tags=[f"{name}-{n}" for n in range(JOBS)])
        count = int(driver("counts")["queued"])
    finally:
        driver.close()
    return lambda: count


def _fill_celery(redis: RedisServer, name: str, run_dir: Path) -> Callable[[], int]:
    app = Celery("retention-e2e", broker=redis.url, set_as_current=False)
    for n in range(JOBS):
        app.send_task("retention_e2e.job", args=(n,), queue=name, priority=n % 10)

    def count() -> int:
        with app.connection_for_write() as conn:
            return int(conn.default_channel.queue_declare(queue=name).message_count)

    return count


FILL: dict[str, Callable[[RedisServer, str, Path], Callable[[], int]]] = {
    "rq": _fill_rq,
    "celery": _fill_celery,
}


@pytest.mark.parametrize("kind", sorted(FILL))
def test_a_filled_queue_scales_workers_out_within_two_ticks(
    kind: str,
    control_plane: ControlPlane,
    autoscaling_operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
    tmp_path: Path,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    create_secret(core, namespace, postgres.password)
    name = f"jobs-{namespace[-5:]}"
    workers: dict[str, Any] = {
        "queue": {kind: {"name": name}},
        "autoscaling": {"jobsPerWorkerPerSecond": 1, "targetDrainSeconds": 30},
    }
    stack = stack_manifest(kind, namespace, postgres=postgres, redis_url=redis_db.url,
                           workers=workers)  # fmt: skip
    apply_ok(control_plane, stack)
    deployment = f"{kind}-workers"
    wait_for(lambda: replicas(apps, namespace, deployment) == 1, timeout=60, what="workers")
    time.sleep(2 * TICK_SECONDS)  # a quiet tick first, so the fill is a change

    pushed = time.monotonic()
    reported = FILL[kind](redis_db, name, tmp_path)
    raised = scaled_out_within_two_ticks(apps, namespace, deployment, since=pushed)
    assert reported() == JOBS
    backlog_shown(control_plane, api_client, namespace, kind, JOBS)
    print(f"\n{kind}: scaled out {raised:.1f} s after the fill began")
