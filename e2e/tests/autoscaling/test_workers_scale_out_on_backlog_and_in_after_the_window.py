"""A backlog in the stack's stream raises its workers within two ticks; once drained they
come down after the scale-down stabilization window, not before."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

import retention_contract as contract
from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
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

from .conftest import TICK_SECONDS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

WINDOW = 8  # scaleDownStabilizationSeconds of the test stack
GROUP = "workers"


def test_backlog_scales_workers_out_then_in_after_the_window(
    control_plane: ControlPlane,
    autoscaling_operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    workers = {
        "autoscaling": {
            "scaleDownStabilizationSeconds": WINDOW,
            "jobsPerWorkerPerSecond": 1,
            "targetDrainSeconds": 30,
        }
    }
    stack = stack_manifest(
        "queue", namespace, postgres=postgres, redis_url=redis_db.url, workers=workers
    )
    apply_ok(control_plane, stack)
    wait_for(lambda: replicas(apps, namespace, "queue-workers") == 1, timeout=60, what="workers")
    stream = contract.default_stream(namespace, "queue")
    with redis_db.client() as conn:
        conn.xgroup_create(stream, GROUP, id="0", mkstream=True)
        # A quiet tick first, so the backlog's arrival is a change the loop sees.
        time.sleep(2 * TICK_SECONDS)
        pushed = time.monotonic()
        pipe = conn.pipeline(transaction=False)
        for n in range(120):
            pipe.xadd(stream, {"job": str(n)})
        pipe.execute()

        wait_for(
            lambda: replicas(apps, namespace, "queue-workers") > 1,
            # Two ticks, plus the tick in progress and the API server's round trips.
            timeout=3 * TICK_SECONDS + 2,
            interval=0.1,
            what="workers scaled out within two ticks",
        )
        raised = time.monotonic() - pushed
        scaled = replicas(apps, namespace, "queue-workers")
        # The API may post a ScaledUp of its own: a Deployment just created carries one
        # replica until the reconciler writes its minimum, and a tick in between raises it.
        up = [e for e in events(core, namespace, reason="ScaledUp") if "workers" in e.message]
        assert up and up[-1].type == "Normal"
        assert up[-1].message.startswith("Scaled the workers up from 1 to")
        status = wait_for(
            lambda: (get_stack(custom, namespace, "queue").get("status") or {}).get("backlog"),
            timeout=10,
            what="status.backlog",
        )
        assert status == 120

        # Drain: a worker takes every entry and acknowledges it.
        for _ in range(10):
            answer = conn.xreadgroup(GROUP, "w1", {stream: ">"}, count=100)
            ids = [entry_id for _, entries in answer for entry_id, _ in entries]
            if not ids:
                break
            conn.xack(stream, GROUP, *ids)
        drained = time.monotonic()

    def workers_status() -> dict[str, object]:
        status = get_stack(custom, namespace, "queue").get("status") or {}
        return dict(status.get("autoscaling", {}).get("workers", {}))

    wait_for(lambda: workers_status().get("backlog") == 0, timeout=10, what="backlog 0")
    # Not before the window: replicas hold while the window still remembers the backlog.
    while time.monotonic() < drained + WINDOW - 2:
        assert replicas(apps, namespace, "queue-workers") >= scaled
        time.sleep(0.5)
    wait_for(
        lambda: replicas(apps, namespace, "queue-workers") == 1,
        # The arrival rate of the burst is remembered for 15 s, then the window runs.
        timeout=15 + WINDOW + 10,
        what="workers back to minReplicas after the window",
    )
    came_down = time.monotonic() - drained
    # The loop posts the Event just after it writes the replicas: wait for it too.
    down = wait_for(
        lambda: events(core, namespace, reason="ScaledDown"), timeout=10, what="ScaledDown"
    )
    assert "Scaled the workers down" in down[-1].message
    assert workers_status()["lastDecision"] in ("ScaleDown", "Hold")
    print(f"\nscaled out {raised:.1f} s after the push; back to 1 {came_down:.1f} s after drain")
