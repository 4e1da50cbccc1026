"""Fixtures of the autoscaling e2e tests: the operator (autoscaler on) and exporters.

There is one operator per test session (``harness.fixtures_cluster.operator``):
its autoscaler ticks every second with the harness Prometheus as its default,
so exactly one operator decides replicas.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from harness.api_exporter import ApiExporter
from harness.controlplane import ControlPlane
from harness.operator import OperatorProcess
from harness.services import PrometheusServer
from harness.stacks import get_stack, replicas, wait_for

TICK_SECONDS = 1.0


@pytest.fixture
def autoscaling_operator(operator: OperatorProcess) -> OperatorProcess:
    """The session's operator: its autoscaler ticks every second on the harness Prometheus."""
    return operator


@pytest.fixture
def api_exporter(
    prometheus: PrometheusServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ApiExporter]]:
    """A factory ``(namespace=, stack=, seconds=, per_second=)`` of exporters Prometheus scrapes."""
    made: list[ApiExporter] = []

    def make(
        *, namespace: str, stack: str, seconds: float, per_second: float = 50.0
    ) -> ApiExporter:
        exporter = ApiExporter(
            namespace=namespace, stack=stack, seconds=seconds, per_second=per_second
        )
        made.append(exporter)
        prometheus.add_scrape_target(
            f"api-{namespace}-{stack}", f"127.0.0.1:{exporter.port}", wait_up=True
        )
        return exporter

    yield make
    for exporter in made:
        exporter.close()


def scaled_out_within_two_ticks(
    apps: Any, namespace: str, deployment: str, *, since: float
) -> float:
    """Wait until ``deployment`` has more than one replica, at most two ticks after the
    monotonic time ``since`` (plus the tick in progress and the API server's round trips);
    return the seconds it took."""
    wait_for(
        lambda: replicas(apps, namespace, deployment) > 1,
        timeout=(time.monotonic() - since) + 3 * TICK_SECONDS + 2,
        interval=0.1,
        what=f"{deployment} scaled out within two ticks",
    )
    return time.monotonic() - since


def backlog_shown(control_plane: ControlPlane, api_client: Any, namespace: str, name: str,
                  expected: int) -> None:  # fmt: skip
    """Wait until ``status.backlog`` is ``expected`` and ``kubectl get rstack`` shows it.

    A scale writes status at once; a backlog that only changed after it is written
    within the loop's refresh period (30 s), hence the wait.
    """
    custom = client.CustomObjectsApi(api_client)
    wait_for(
        lambda: (get_stack(custom, namespace, name).get("status") or {}).get("backlog") == expected,
        timeout=40,
        what=f"status.backlog of {name} = {expected}",
    )
    shown = control_plane.kubectl(
        "get", "rstack", name, "-n", namespace, "-o", "custom-columns=BACKLOG:.status.backlog"
    )
    assert shown.split() == ["BACKLOG", str(expected)]
