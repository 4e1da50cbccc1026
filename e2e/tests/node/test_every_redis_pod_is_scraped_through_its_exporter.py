"""Every Redis pod of the demo's stack runs redis_exporter, and a real Prometheus scrapes it.

The exporter is the operator's sidecar on the project's redis-exporter image
(Debian's prometheus-redis-exporter), reading its own server with the
password from the stack's auth Secret. Debian's Prometheus, on the host, scrapes
each pod's exporter port at the pod's IP (Debian's build has no Kubernetes
discovery, so the targets are the pods the API server lists): ``redis_up`` is
1 for every pod, and each reports the maxmemory the operator set from the
container's memory limit (none: 0, no bound).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.fixtures_node import DemoRuns
from harness.procs import wait_until
from harness.prometheus_server import start_prometheus
from retention_operator import names
from retention_operator.builders import naming, redis
from retention_operator.model import RetentionStack

pytestmark = pytest.mark.node


def test_every_redis_pod_answers_up_with_its_maxmemory(demo_runs: DemoRuns, tmp_path: Path) -> None:
    cp = demo_runs.current.cp
    selector = f"{names.LABEL_STACK}=demo,{names.LABEL_COMPONENT}={names.COMPONENT_REDIS}"
    pods = json.loads(cp.kubectl("get", "pods", "-n", "demo", "-l", selector, "-o", "json"))
    by_ip = {p["status"]["podIP"]: p for p in pods["items"]}
    assert len(by_ip) == 6
    for pod in by_ip.values():
        [exporter] = [
            c for c in pod["status"]["containerStatuses"] if c["name"] == redis.EXPORTER_CONTAINER
        ]
        assert exporter["ready"] and exporter["restartCount"] == 0, exporter
    prometheus = start_prometheus(base_dir=tmp_path)
    try:
        for ip, pod in by_ip.items():
            prometheus.add_scrape_target(
                "redis",
                f"{ip}:{naming.REDIS_EXPORTER_PORT}",
                {"pod": pod["metadata"]["name"]},
                wait_up=True,
            )

        def every_pod_up() -> bool:
            up = prometheus.query("redis_up == 1")
            return {s["metric"]["pod"] for s in up} == {
                p["metadata"]["name"] for p in by_ip.values()
            }

        wait_until(every_pod_up, what="redis_up of every Redis pod", timeout=30)
        stack = RetentionStack.model_validate(
            json.loads(cp.kubectl("get", "retentionstacks", "demo", "-n", "demo", "-o", "json"))
        )
        assert stack.spec.redis.managed is not None
        # maxmemory 0 is no bound: a stack without a memory limit sets none.
        expected = float(redis.maxmemory(stack.spec.redis.managed) or 0)
        reported = {
            s["metric"]["pod"]: float(s["value"][1])
            for s in prometheus.query("redis_memory_max_bytes")
        }
        print(f"maxmemory: expected {expected:.0f}, reported {reported}")
        assert reported == {p["metadata"]["name"]: expected for p in by_ip.values()}
        clients = prometheus.query("redis_connected_clients")
        assert all(float(s["value"][1]) >= 1 for s in clients), clients
    finally:
        prometheus.stop()
