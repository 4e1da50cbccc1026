"""Prometheus scrapes a target added at run time, with the target's extra labels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from harness.procs import free_port, wait_until
from harness.services import PrometheusServer

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]

LABELS = {"namespace": "team-a", "stack": "orders"}


@pytest.fixture
def exporter() -> Iterator[str]:
    """A prometheus_client HTTP exporter on 127.0.0.1 with one gauge; yields "host:port"."""
    registry = CollectorRegistry()
    Gauge("retention_test_queue_depth", "Jobs waiting, set by the test.", registry=registry).set(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _samples(prometheus: PrometheusServer, job: str) -> list[dict[str, Any]]:
    return prometheus.query(f'retention_test_queue_depth{{job="{job}"}}')


def test_added_target_is_scraped_with_its_labels(
    prometheus: PrometheusServer, exporter: str
) -> None:
    prometheus.add_scrape_target("exporter-labels", exporter, LABELS)

    wait_until(lambda: bool(_samples(prometheus, "exporter-labels")), what="sample", timeout=15)
    (sample,) = _samples(prometheus, "exporter-labels")
    assert sample["metric"]["namespace"] == "team-a"
    assert sample["metric"]["stack"] == "orders"
    assert sample["metric"]["instance"] == exporter
    assert float(sample["value"][1]) == 42.0


def test_restarted_prometheus_keeps_port_and_targets(
    prometheus: PrometheusServer, exporter: str
) -> None:
    prometheus.add_scrape_target("exporter-restart", exporter, wait_up=True)
    port = prometheus.port

    prometheus.stop()
    prometheus.start()

    assert prometheus.port == port
    targets = [t for t in prometheus.targets() if t["scrapePool"] == "exporter-restart"]
    assert [t["labels"]["instance"] for t in targets] == [exporter]
    wait_until(lambda: bool(_samples(prometheus, "exporter-restart")), what="sample", timeout=15)
