"""An API whose p95 latency, as Prometheus reads it, is above target gets more replicas."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

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

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_slow_requests_scale_the_api_out(
    control_plane: ControlPlane,
    autoscaling_operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
    api_exporter: Callable[..., Any],
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    api = {"autoscaling": {"targetP95Milliseconds": 200}}
    apply_ok(
        control_plane,
        stack_manifest("web", namespace, postgres=postgres, redis_url=redis_db.url, api=api),
    )
    wait_for(lambda: replicas(apps, namespace, "web-api") == 2, timeout=60, what="API Deployment")
    api_exporter(namespace=namespace, stack="web", seconds=0.6, per_second=100)

    wait_for(
        lambda: replicas(apps, namespace, "web-api") > 2,
        timeout=60,
        what="the API scaled out on a p95 above target",
    )
    # The Event follows the replicas write, so it may land a moment after it; and a
    # ScaledUp from 1 to the minimum can come first, before the reconciler's write.
    (up, *_) = wait_for(
        lambda: [
            e
            for e in events(core, namespace, reason="ScaledUp")
            if e.message.startswith("Scaled the API up from 2 to")
        ],
        timeout=15,
        what="the API's ScaledUp Event",
    )
    assert "against a target of 200 ms" in up.message

    def api_status() -> dict[str, Any]:
        status = get_stack(custom, namespace, "web").get("status") or {}
        return dict(status.get("autoscaling", {}).get("api", {}))

    status = wait_for(lambda: api_status().get("p95Milliseconds"), timeout=10, what="p95 status")
    assert status > 200
    stack_status = get_stack(custom, namespace, "web")["status"]
    assert stack_status["p95Milliseconds"] > 200
    assert api_status()["requestsPerSecond"] > 0
