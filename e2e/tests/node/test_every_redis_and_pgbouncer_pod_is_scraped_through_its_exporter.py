"""Every Redis and PgBouncer pod of the demo's stack runs its exporter, and a real Prometheus
scrapes it.

The exporters are the operator's sidecars on the project's images (redis-exporter:
Debian's prometheus-redis-exporter; pgbouncer-exporter: spreaker's from PyPI),
reading their own server: Redis with the password from the stack's auth Secret,
PgBouncer's admin console with the passfile its start script renders. Debian's
Prometheus, on the host, scrapes each pod's exporter port at the pod's IP
(Debian's build has no Kubernetes discovery, so the targets are the pods the API
server lists). Every pod answers up; each Redis reports the maxmemory the operator
set from the container's memory limit (none: 0, no bound); each PgBouncer reports
its pool of the stack's database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.fixtures_node import DemoRuns
from harness.procs import wait_until
from harness.prometheus_server import PrometheusServer, start_prometheus
from retention_operator import names
from retention_operator.builders import naming, redis
from retention_operator.model import RetentionStack

pytestmark = pytest.mark.node


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    server = start_prometheus(base_dir=tmp_path)
    yield server
    server.stop()


def _scraped(
    demo_runs: DemoRuns, prometheus: PrometheusServer, component: str, container: str, port: int
) -> set[str]:
    """Scrape the exporter of every pod of ``component``; return the pods' names."""
    cp = demo_runs.current.cp
    selector = f"{names.LABEL_STACK}=demo,{names.LABEL_COMPONENT}={component}"
    pods = json.loads(cp.kubectl("get", "pods", "-n", "demo", "-l", selector, "-o", "json"))
    for pod in pods["items"]:
        [status] = [c for c in pod["status"]["containerStatuses"] if c["name"] == container]
        assert status["ready"] and status["restartCount"] == 0, status
        prometheus.add_scrape_target(
            component,
            f"{pod['status']['podIP']}:{port}",
            {"pod": pod["metadata"]["name"]},
            wait_up=True,
        )
    return {pod["metadata"]["name"] for pod in pods["items"]}


def _by_pod(prometheus: PrometheusServer, query: str) -> dict[str, float]:
    return {s["metric"]["pod"]: float(s["value"][1]) for s in prometheus.query(query)}


def _stack(demo_runs: DemoRuns) -> RetentionStack:
    out = demo_runs.current.cp.kubectl("get", "retentionstacks", "demo", "-n", "demo", "-o", "json")
    return RetentionStack.model_validate(json.loads(out))


def test_every_redis_pod_answers_up_with_its_maxmemory(
    demo_runs: DemoRuns, prometheus: PrometheusServer
) -> None:
    pods = _scraped(
        demo_runs,
        prometheus,
        names.COMPONENT_REDIS,
        naming.EXPORTER_CONTAINER,
        naming.REDIS_EXPORTER_PORT,
    )
    assert len(pods) == 6
    wait_until(
        lambda: set(_by_pod(prometheus, "redis_up == 1")) == pods,
        what="redis_up of every Redis pod",
        timeout=30,
    )
    managed = _stack(demo_runs).spec.redis.managed
    assert managed is not None
    expected = float(redis.maxmemory(managed) or 0)
    reported = _by_pod(prometheus, "redis_memory_max_bytes")
    print(f"maxmemory: expected {expected:.0f}, reported {reported}")
    assert reported == {pod: expected for pod in pods}
    assert all(v >= 1 for v in _by_pod(prometheus, "redis_connected_clients").values())


def test_every_pgbouncer_pod_answers_up_with_its_pool(
    demo_runs: DemoRuns, prometheus: PrometheusServer
) -> None:
    pods = _scraped(
        demo_runs,
        prometheus,
        names.COMPONENT_PGBOUNCER,
        naming.EXPORTER_CONTAINER,
        naming.PGBOUNCER_EXPORTER_PORT,
    )
    assert len(pods) == _stack(demo_runs).spec.pgbouncer.replicas
    wait_until(
        lambda: set(_by_pod(prometheus, "pgbouncer_up == 1")) == pods,
        what="pgbouncer_up of every PgBouncer pod",
        timeout=30,
    )
    database = _stack(demo_runs).spec.pgbouncer.database.name
    sizes: dict[str, Any] = _by_pod(
        prometheus, f'pgbouncer_databases_database_pool_size{{database="{database}"}}'
    )
    print(f"pool size by pod: {sizes}")
    assert sizes == {pod: float(_stack(demo_runs).spec.pgbouncer.default_pool_size) for pod in pods}
