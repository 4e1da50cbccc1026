"""Fixtures of the autoscaling e2e tests: the operator (autoscaler on) and exporters.

There is one operator per test session (``harness.fixtures_cluster.operator``):
its autoscaler ticks every second with the harness Prometheus as its default,
so exactly one operator decides replicas.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, Histogram, start_http_server

import retention_contract as contract
from harness.operator import OperatorProcess
from harness.procs import free_port
from harness.services import PrometheusServer

TICK_SECONDS = 1.0
# API latency buckets of the workloads (retention_workloads.metrics), fine around 200 ms.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)


@pytest.fixture
def autoscaling_operator(operator: OperatorProcess) -> OperatorProcess:
    """The session's operator: its autoscaler ticks every second on the harness Prometheus."""
    return operator


class ApiExporter:
    """A stand-in for a stack's API: the contract's latency histogram, observed steadily."""

    def __init__(self, *, namespace: str, stack: str, seconds: float, per_second: float) -> None:
        self.registry = CollectorRegistry()
        self.histogram = Histogram(
            contract.METRIC_API_REQUEST_DURATION,
            "Time from the first byte of a request to the end of its response.",
            [contract.LABEL_NAMESPACE, contract.LABEL_STACK, "route", "method", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.child = self.histogram.labels(namespace, stack, "/v1/jobs", "POST", "202")
        self.seconds = seconds
        self.per_second = per_second
        self.port = free_port()
        self._stop = threading.Event()
        self._server, self._thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )
        self._observer = threading.Thread(target=self._observe, daemon=True)
        self._observer.start()

    def _observe(self) -> None:
        # Ten batches a second; bounded by the stop event set at teardown.
        while not self._stop.wait(0.1):
            for _ in range(max(1, round(self.per_second / 10))):
                self.child.observe(self.seconds)

    def close(self) -> None:
        self._stop.set()
        self._observer.join(timeout=2)
        self._server.shutdown()
        self._thread.join(timeout=2)


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
