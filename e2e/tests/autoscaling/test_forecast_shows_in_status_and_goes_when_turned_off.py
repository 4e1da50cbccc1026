"""``status.autoscaling.workers.forecast`` shows the forecast of a stack whose spec leaves it
on (as shipped); ``forecast: false`` in the spec removes it within a tick, and turning it
back on brings it back. On this cluster the forecast has no history yet, so it is shown
learning (not in use, no days learned); what it does with a history is the services test
``test_forecast_is_read_from_prometheus_at_start_up`` and the simulator's."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PostgresServer, RedisServer
from harness.stacks import apply_ok, create_secret, get_stack, replicas, stack_manifest, wait_for

from .conftest import TICK_SECONDS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_the_forecast_is_shown_and_goes_within_a_tick_when_turned_off(
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

    def manifest(forecast: bool | None) -> dict[str, Any]:
        auto = {} if forecast is None else {"forecast": forecast}
        return stack_manifest(
            "ahead",
            namespace,
            postgres=postgres,
            redis_url=redis_db.url,
            workers={"autoscaling": auto},
        )

    def shown() -> dict[str, Any] | None:
        status = get_stack(custom, namespace, "ahead").get("status") or {}
        workers = status.get("autoscaling", {}).get("workers", {})
        return workers.get("forecast") if "desiredReplicas" in workers else None

    apply_ok(control_plane, manifest(None))
    wait_for(lambda: replicas(apps, namespace, "ahead-workers") == 1, timeout=60, what="workers")
    block = wait_for(shown, timeout=15, what="status.autoscaling.workers.forecast")
    assert block == {"inUse": False, "trust": 0.0, "daysLearned": 0}

    apply_ok(control_plane, manifest(False))
    turned_off = time.monotonic()

    def gone() -> bool:
        status = get_stack(custom, namespace, "ahead").get("status") or {}
        workers = status.get("autoscaling", {}).get("workers", {})
        return "desiredReplicas" in workers and "forecast" not in workers

    # Within a tick: the operator's watch sees the spec, the next tick drops the forecast
    # and writes the status at once (a block going is a material change).
    wait_for(gone, timeout=3 * TICK_SECONDS + 3, interval=0.1, what="forecast removed")
    took = time.monotonic() - turned_off
    crd = control_plane.kubectl(
        "get", "rstack", "ahead", "-n", namespace, "-o", "jsonpath={.spec.workers.autoscaling}"
    )
    assert '"forecast":false' in crd

    apply_ok(control_plane, manifest(True))
    wait_for(shown, timeout=3 * TICK_SECONDS + 3, interval=0.1, what="forecast back")
    print(f"\nforecast removed from status {took:.1f} s after forecast: false was applied")
