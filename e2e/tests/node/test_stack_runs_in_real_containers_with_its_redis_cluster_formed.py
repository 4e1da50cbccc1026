"""The demo's stack on the real node: every pod a containerd container, the Redis Cluster formed.

The cluster's state is read through the pods themselves (``kubectl exec``
into each Redis pod, which the kubelet serves), not from the operator's view.
"""

from __future__ import annotations

import json

import pytest

from harness import demo
from harness.fixtures_node import DemoRuns
from harness.node.realnode import NODE_NAME
from retention_operator import names

pytestmark = pytest.mark.node
NAMESPACE = STACK = "demo"


def _pods(demo_runs: DemoRuns) -> list[dict[str, object]]:
    out = demo_runs.current.cp.kubectl("get", "pods", "-n", NAMESPACE, "-o", "json")
    items: list[dict[str, object]] = json.loads(out)["items"]
    return items


def test_every_pod_runs_on_the_real_node_in_a_containerd_container(demo_runs: DemoRuns) -> None:
    pods = _pods(demo_runs)
    components = {p["metadata"]["labels"][names.LABEL_COMPONENT] for p in pods}  # type: ignore[index]
    assert {"api", "workers", "redis", "pgbouncer"} <= components
    for pod in pods:
        assert pod["spec"]["nodeName"] == NODE_NAME, pod["metadata"]["name"]  # type: ignore[index]
        assert pod["status"]["phase"] == "Running"  # type: ignore[index]
        for status in pod["status"]["containerStatuses"]:  # type: ignore[index]
            assert status["containerID"].startswith("containerd://"), status
            assert status["ready"] is True, status


def _redis_cli(demo_runs: DemoRuns, pod: str, *args: str) -> str:
    return demo.redis_cli(demo_runs.current.cp, pod, *args)


def test_the_redis_cluster_covers_every_slot_in_every_pods_view(demo_runs: DemoRuns) -> None:
    redis_pods = [
        p["metadata"]["name"]  # type: ignore[index]
        for p in _pods(demo_runs)
        if p["metadata"]["labels"][names.LABEL_COMPONENT] == "redis"  # type: ignore[index]
    ]
    assert len(redis_pods) == 6
    for pod in redis_pods:
        info = dict(
            line.split(":", 1)
            for line in _redis_cli(demo_runs, pod, "cluster", "info").split()
            if ":" in line
        )
        assert info["cluster_state"] == "ok", (pod, info)
        assert info["cluster_slots_ok"] == "16384", (pod, info)
        assert info["cluster_known_nodes"] == "6", (pod, info)
        assert info["cluster_size"] == "3", (pod, info)
    roles = _redis_cli(demo_runs, redis_pods[0], "cluster", "nodes")
    assert roles.count("master") == 3 and roles.count("slave") == 3, roles
