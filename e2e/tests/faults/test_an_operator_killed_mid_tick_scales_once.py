"""An operator SIGKILLed the moment its autoscaling tick's replicas write lands: the next
operator reports that decision and never makes it a second time.

The backlog (120 jobs, no consumer) is in the stream before the stack exists,
so every tick of every operator sees the same queue and no arrival rate: the
first decision (1 -> 4 workers) is the only one there is to make. The kill
comes on the watch event of that write, before or while the tick posts its
Event and status. The audit log counts every replicas write of every operator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import apply_ok, create_secret, events, get_stack, replicas

from .conftest import BACKLOG, HOLD_TICKS, SCALED, WatchTrigger, queue_stack, replica_writes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def _scaled(deployment: Any) -> bool:
    return bool(deployment.metadata.name == "queue-workers" and (deployment.spec.replicas or 0) > 1)


def test_a_tick_killed_after_its_scale_is_reported_by_the_next_operator_not_repeated(
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

    first = operators("operator-a")
    first.start()
    kill = WatchTrigger(apps.list_namespaced_deployment, namespace, _scaled, first.kill, timeout=90)
    apply_ok(control_plane, manifest)
    killed = kill.wait()
    time.sleep(1)  # Requests already on the wire land (or not) before the count.
    at_kill = replicas(apps, namespace, "queue-workers")
    events_at_kill = len(events(core, namespace, reason="ScaledUp"))
    status_at_kill = (get_stack(custom, namespace, "queue").get("status") or {}).get("autoscaling")
    assert at_kill == SCALED

    second = operators("operator-b")
    started = time.monotonic()
    second.start()

    def reported() -> bool:
        status = get_stack(custom, namespace, "queue").get("status") or {}
        block = (status.get("autoscaling") or {}).get("workers") or {}
        return bool(block.get("desiredReplicas") == SCALED and block.get("backlog") == BACKLOG)

    deadline = time.monotonic() + 60
    while not reported():
        assert time.monotonic() < deadline, "the next operator never reported the decision"
        time.sleep(0.2)
    converged = time.monotonic() - started
    # Several ticks of the next operator on the same queue: it holds.
    time.sleep(HOLD_TICKS)
    assert replicas(apps, namespace, "queue-workers") == SCALED
    writes = replica_writes(control_plane, namespace, "queue-workers")
    by = [w.user for w in writes]
    # The initial replicas on creation, then the one scale; the next operator wrote none.
    assert by == ["operator-a", "operator-a"], [(w.user, w.verb, w.at) for w in writes]
    scaled_up = [e.message for e in events(core, namespace, reason="ScaledUp")]
    assert len(scaled_up) <= 1, scaled_up
    event = "posted" if events_at_kill else "not posted"
    status = "written" if status_at_kill else "not written"
    print(
        f"\nkilled on the 1 -> {SCALED} write (its Event {event}, its status {status}); "
        f"the next operator "
        f"reported it {converged:.1f} s after its start ({started - killed:.1f} s after the "
        f"kill) and held {HOLD_TICKS} ticks; replicas writes {len(writes)} (creation + 1 "
        f"scale, none by the next); ScaledUp Events {len(scaled_up)}; lost: nothing"
    )
