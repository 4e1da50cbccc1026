"""The API server SIGKILLed as a stack's first autoscaling ticks run: once it is back, the
workers are scaled once, reported once, and held.

The backlog (120 jobs, no consumer) is in the stream before the stack exists,
so every tick sees the same queue and no arrival rate: 1 -> 4 workers is the
only decision there is. The API server is killed on the watch event of the
workers' Deployment being created, so the ticks that would scale it (and the
reconcile's initial replicas) meet no API server for 3 s, while Redis answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import apply_ok, create_secret, events, get_stack, replicas, wait_for

from .conftest import BACKLOG, HOLD_TICKS, SCALED, WatchTrigger, queue_stack, replica_writes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

DOWN_SECONDS = 3.0


def test_ticks_across_an_api_server_restart_scale_the_workers_once(
    control_plane: ControlPlane,
    operators: Callable[..., OperatorProcess],
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    manifest = queue_stack(namespace, postgres=postgres, redis=redis_db)
    operator = operators("operator-a")
    operator.start()
    back: list[float] = []

    def restart() -> None:
        control_plane.restart("kube-apiserver", down_seconds=DOWN_SECONDS, kill=True)
        back.append(time.monotonic())

    fault = WatchTrigger(
        apps.list_namespaced_deployment,
        namespace,
        lambda obj: bool(obj.metadata.name == "queue-workers"),
        restart,
        timeout=90,
    )
    apply_ok(control_plane, manifest)
    fault.wait()
    wait_for(
        lambda: replicas(apps, namespace, "queue-workers") == SCALED,
        timeout=60,
        interval=0.2,
        what=f"the workers scaled to {SCALED} after the API server's return",
    )
    converged = time.monotonic() - back[0]

    def scaled_up() -> list[str]:
        up = events(core, namespace, reason="ScaledUp")
        return [e.message for e in up if "workers" in e.message]

    wait_for(scaled_up, timeout=20, what="the ScaledUp Event")
    wait_for(
        lambda: (
            ((get_stack(custom, namespace, "queue").get("status") or {}).get("autoscaling") or {})
            .get("workers", {})
            .get("desiredReplicas")
            == SCALED
        ),
        timeout=40,
        what="status.autoscaling.workers.desiredReplicas",
    )
    time.sleep(HOLD_TICKS)
    assert replicas(apps, namespace, "queue-workers") == SCALED
    # The API's initial replicas (its minimum, 2) are in place even if the kill came
    # between its creation and that write: the tick brings replicas within bounds.
    assert replicas(apps, namespace, "queue-api") == 2
    assert operator.proc is not None and operator.proc.alive(), operator.log_tail()
    writes = replica_writes(control_plane, namespace, "queue-workers")
    # At most the initial replicas (if the reconcile wrote them before the kill) and one scale.
    assert 1 <= len(writes) <= 2, [(w.user, w.verb, w.at) for w in writes]
    assert len(scaled_up()) == 1, scaled_up()
    print(
        f"\nAPI server killed, down {DOWN_SECONDS:.0f} s, at the workers' creation; scaled "
        f"1 -> {SCALED} {converged:.1f} s after it was back, held {HOLD_TICKS} ticks; replicas "
        f"writes {len(writes)}; ScaledUp Events {len(scaled_up())}; backlog {BACKLOG}; "
        f"lost: nothing"
    )
