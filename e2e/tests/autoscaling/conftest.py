"""Fixtures of the autoscaling e2e tests: the operator (autoscaler on) and exporters.

There is one operator per test session (``harness.fixtures_cluster.operator``):
its autoscaler ticks every second with the harness Prometheus as its default,
so exactly one operator decides replicas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from harness.api_exporter import ApiExporter
from harness.operator import OperatorProcess
from harness.services import PrometheusServer

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
