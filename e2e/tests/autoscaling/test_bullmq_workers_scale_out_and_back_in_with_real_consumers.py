"""A stack whose workers consume a BullMQ queue scales out when a real producer fills it,
and back in once real consumers have drained it.

The producer is the Hono + BullMQ example's API (``examples/bullmq``, a process), which
enqueues with BullMQ's ``Queue.add``. KWOK runs no containers, so the consumers are the
example's BullMQ workers run as processes here, as many as the workers Deployment's
``spec.replicas`` (:class:`harness.replica_processes.ReplicaProcesses`; scale-in stops
them with SIGTERM, and each one's ``worker.close()`` finishes the job it holds). While
no consumer runs, ``kubectl get rstack`` must show the backlog BullMQ's own
``getJobCounts`` gives (the driver asks it), and the workers must scale out within two
ticks of the fill.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from harness import node_apps
from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.procs import Proc, free_port, wait_until
from harness.replica_processes import ReplicaProcesses
from harness.services import PostgresServer, RedisServer
from harness.stacks import (
    apply_ok,
    create_secret,
    events,
    get_stack,
    replicas,
    stack_manifest,
    wait_for,
)

from .conftest import TICK_SECONDS, backlog_shown, scaled_out_within_two_ticks

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

JOBS = 240
JOB_MS = 100  # each worker process runs one job at a time: 10 jobs/s
WINDOW = 8  # scaleDownStabilizationSeconds of the test stack


def test_bullmq_backlog_scales_workers_out_and_real_consumers_bring_them_back(
    control_plane: ControlPlane,
    autoscaling_operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
    tmp_path: Path,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    queue = {"name": f"mail-{namespace[-5:]}", "prefix": "bull"}
    workers = {
        "queue": {"bullmq": queue},
        "autoscaling": {
            "scaleDownStabilizationSeconds": WINDOW,
            "jobsPerWorkerPerSecond": 1000 / JOB_MS,
            "targetDrainSeconds": 10,
            "targetQueueWaitSeconds": 60,
        },
    }
    apply_ok(control_plane, stack_manifest("mail", namespace, postgres=postgres,
                                           redis_url=redis_db.url, workers=workers))  # fmt: skip
    wait_for(lambda: replicas(apps, namespace, "mail-workers") == 1, timeout=60, what="workers")

    env = {
        "RETENTION_REDIS_URL": redis_db.url,
        "RETENTION_QUEUE_NAME": queue["name"],
        "RETENTION_QUEUE_PREFIX": queue["prefix"],
        "RETENTION_WORKER_CONCURRENCY": "1",
        "EXAMPLE_JOB_MS": str(JOB_MS),
    }
    port = free_port()
    api = node_apps.BULLMQ_EXAMPLE.start(
        "src/api.js",
        run_dir=tmp_path / "api",
        name="api",
        env={**env, "RETENTION_HTTP_PORT": str(port), "RETENTION_BIND_ADDRESS": "127.0.0.1"},
    )
    driver = node_apps.node_driver(node_apps.bullmq_driver(6), run_dir=tmp_path / "drv", env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, what="api",
                   timeout=30, proc=api)  # fmt: skip
        time.sleep(2 * TICK_SECONDS)  # a quiet tick first, so the fill is a change
        pushed = time.monotonic()
        with httpx.Client(base_url=url, timeout=10) as http:
            for n in range(JOBS):
                assert http.post("/v1/messages", json={"n": n}).status_code == 202
        raised = scaled_out_within_two_ticks(apps, namespace, "mail-workers", since=pushed)
        counts = driver("counts")["counts"]
        reported = counts["waiting"] + counts["prioritized"] + counts["active"]
        assert reported == JOBS
        backlog_shown(control_plane, api_client, namespace, "mail", reported)
        scaled = replicas(apps, namespace, "mail-workers")

        def start(n: int) -> Proc:
            own = {
                "RETENTION_METRICS_PORT": str(free_port()),
                "RETENTION_BIND_ADDRESS": "127.0.0.1",
            }
            return node_apps.BULLMQ_EXAMPLE.start(
                "src/worker.js", run_dir=tmp_path / f"worker-{n}", name="worker", env=env | own
            )

        with ReplicaProcesses(apps, namespace=namespace, name="mail-workers", start=start) as run:
            wait_for(lambda: driver("counts")["counts"]["completed"] == JOBS, timeout=90,
                     what="the consumers drained the queue")  # fmt: skip
            drained = time.monotonic()
            wait_for(lambda: replicas(apps, namespace, "mail-workers") == 1,
                     timeout=15 + WINDOW + 20, what="workers back to one")  # fmt: skip
            came_down = time.monotonic() - drained
            wait_until(lambda: run.running == 1, what="one consumer left", timeout=20)
            most = run.most
    finally:
        driver.close()
        api.stop()
    assert most >= scaled > 1
    # The loop posts the Event just after it writes the replicas: wait for it too.
    down = wait_for(
        lambda: [e for e in events(core, namespace, reason="ScaledDown") if "workers" in e.message],
        timeout=10,
        what="the workers' ScaledDown Event",
    )
    assert down[-1].message.startswith("Scaled the workers down")
    status = get_stack(custom, namespace, "mail")["status"]
    assert status["backlog"] == 0
    print(
        f"\nscaled out to {scaled} {raised:.1f} s after the fill began; {most} consumers at "
        f"most; back to 1 {came_down:.1f} s after the queue drained"
    )
