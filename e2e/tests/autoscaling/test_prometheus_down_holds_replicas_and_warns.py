"""With Prometheus stopped, the API's replicas hold, and status and a Warning Event say why."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, PrometheusServer, RedisServer
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


def test_prometheus_down_holds_replicas_with_a_warning(
    control_plane: ControlPlane,
    autoscaling_operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    postgres: PostgresServer,
    redis_db: RedisServer,
    prometheus: PrometheusServer,
    api_exporter: Callable[..., Any],
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    create_secret(core, namespace, postgres.password)
    api = {"minReplicas": 3, "maxReplicas": 6}
    apply_ok(
        control_plane,
        stack_manifest("steady", namespace, postgres=postgres, redis_url=redis_db.url, api=api),
    )
    wait_for(lambda: replicas(apps, namespace, "steady-api") == 3, timeout=60, what="API")
    api_exporter(namespace=namespace, stack="steady", seconds=0.03, per_second=20)

    def api_status() -> dict[str, Any]:
        status = get_stack(custom, namespace, "steady").get("status") or {}
        return dict(status.get("autoscaling", {}).get("api", {}))

    wait_for(
        lambda: api_status().get("p95Milliseconds") is not None,
        timeout=30,
        what="a p95 in status while Prometheus is up",
    )
    held = replicas(apps, namespace, "steady-api")
    prometheus.stop()
    try:
        warning = wait_for(
            lambda: [
                e
                for e in events(core, namespace, reason="MetricsUnavailable")
                if "did not answer" in e.message
            ],
            timeout=15,
            what="a MetricsUnavailable Warning naming Prometheus",
        )[0]
        assert warning.type == "Warning"
        assert "replicas hold" in warning.message
        status = wait_for(
            lambda: api_status() if "p95Milliseconds" not in api_status() else None,
            timeout=10,
            what="status without a p95",
        )
        assert status["lastDecision"] == "Hold"
        assert "missing data never scales down" in status["lastReason"]
        assert "p95Milliseconds" not in get_stack(custom, namespace, "steady")["status"]
        # Several ticks later: the same replicas, and still one Warning (not one per tick).
        time.sleep(5)
        assert replicas(apps, namespace, "steady-api") == held
        warnings = [
            e
            for e in events(core, namespace, reason="MetricsUnavailable")
            if "did not answer" in e.message
        ]
        assert len(warnings) == 1
        assert (
            get_stack(custom, namespace, "steady")["status"]["autoscaling"]["api"]["failedTicks"]
            >= 1
        )
    finally:
        prometheus.start()
